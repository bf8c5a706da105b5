"""A small client for the InfluxDB v1 HTTP API: ``POST /write`` and ``/query``.

Why not ``influxdb-client``: it speaks only the 2.x API, which InfluxDB 1.x (Debian's 1.6)
lacks and InfluxDB 3 has partly dropped. ``/write`` with line protocol and InfluxQL on
``/query`` are served by 1.x, by 2.x (v1 compatibility endpoints with a DBRP mapping) and
by 3.x, and are what Grafana's InfluxQL data source uses. See ``docs/influxdb.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx

from common.settings import InfluxSettings


class InfluxError(RuntimeError):
    """InfluxDB refused or failed a request."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        #: the HTTP status, when InfluxDB answered at all
        self.status_code = status_code


class InfluxUnavailable(InfluxError):
    """InfluxDB could not be reached or answered 5xx: worth retrying later."""


class InfluxRejected(InfluxError):
    """InfluxDB answered 4xx: the request itself is wrong; retrying will not help."""


@lru_cache(maxsize=262_144)
def escape_key(text: str) -> str:
    """Tag keys, tag values and field keys repeat endlessly (device ids): cache them."""
    return text.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", r"\,").replace(" ", r"\ ")


def field_value(value: float | int | bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol cannot carry NaN or infinity")
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, float | int | bool | str]
    time_ms: int

    def to_line(self) -> str:
        if not self.fields:
            raise ValueError(f"point {self.measurement} has no fields")
        return f"{series_key(self.measurement, self.tags)} {format_fields(self.fields)} " \
               f"{self.time_ms}"


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """Measurement and sorted tags, escaped: the part of a line that names the series."""
    rendered = "".join(
        f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v
    )
    return f"{_escape_measurement(measurement)}{rendered}"


def format_fields(fields: Mapping[str, float | int | bool | str]) -> str:
    return ",".join(f"{escape_key(k)}={field_value(v)}" for k, v in fields.items())


@dataclass(slots=True)
class Series:
    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) | self.tags for row in self.values]


class InfluxClient:
    """Writes line protocol and runs InfluxQL. Build it once and pass it in."""

    def __init__(self, settings: InfluxSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        headers = {}
        auth = None
        if settings.token is not None:
            headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
        elif settings.username and settings.password is not None:
            auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
        self._http = http or httpx.Client(
            base_url=settings.url, timeout=settings.timeout_s, headers=headers, auth=auth
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB at {self.settings.url}: {exc}") from exc
        if response.status_code >= 500:
            raise InfluxUnavailable(
                f"InfluxDB {response.status_code}: {response.text[:300]}", response.status_code
            )
        if response.status_code >= 400:
            raise InfluxRejected(
                f"InfluxDB {response.status_code}: {response.text[:500]}", response.status_code
            )
        return response

    def ping(self) -> bool:
        try:
            return self._request("GET", "/ping").status_code == 204
        except InfluxError:
            return False

    def write_lines(self, lines: Iterable[str], precision: str = "ms") -> None:
        body = "\n".join(lines).encode()
        if not body:
            return
        self._request(
            "POST",
            "/write",
            params={"db": self.settings.database, "precision": precision},
            content=body,
        )

    def write_points(self, points: Iterable[Point], precision: str = "ms") -> None:
        self.write_lines((p.to_line() for p in points), precision)

    def query(self, influxql: str, *, epoch: str = "ms") -> list[Series]:
        """Run one or more InfluxQL statements; return every series of every result."""
        response = self._request(
            "POST",
            "/query",
            params={"db": self.settings.database, "epoch": epoch},
            data={"q": influxql},
        )
        series: list[Series] = []
        for result in response.json().get("results", []):
            if "error" in result:
                raise InfluxRejected(f"InfluxQL error: {result['error']}")
            for item in result.get("series", []):
                series.append(
                    Series(
                        name=item.get("name", ""),
                        columns=item.get("columns", []),
                        values=item.get("values", []),
                        tags=item.get("tags", {}) or {},
                    )
                )
        return series

    def query_csv(self, influxql: str, *, epoch: str = "ms") -> bytes:
        """One InfluxQL statement's answer as InfluxDB's CSV (1.6+; ``Accept: application/csv``).

        Columns ``name,tags,time,<fields>``; ``tags`` as ``key=value`` (escaped as in line
        protocol), empty cells for nulls, booleans ``true``/``false``; empty when nothing
        matched. Parsing this with a C CSV reader costs a fraction of the JSON answer's
        Python objects (``analysis/source.py``). Raises InfluxRejected when the statement
        fails.
        """
        response = self._request(
            "POST",
            "/query",
            params={"db": self.settings.database, "epoch": epoch},
            data={"q": influxql},
            headers={"Accept": "application/csv"},
        )
        body = response.content
        if body.startswith(b"error\n") or body.startswith(b"error\r\n"):
            message = body.split(b"\n", 1)[1].strip().strip(b'"').decode(errors="replace")
            raise InfluxRejected(f"InfluxQL error: {message}")
        return body

    def ensure_database(self) -> None:
        if self.settings.create_database:
            self.query(f'CREATE DATABASE "{self.settings.database}"')

    def count(self, measurement: str, field_name: str, where: str = "") -> int:
        clause = f" WHERE {where}" if where else ""
        result = self.query(f'SELECT count("{field_name}") FROM "{measurement}"{clause}')
        return int(result[0].values[0][1]) if result and result[0].values else 0
