"""Deliver alert changes to the ticket service and write analysis results to InfluxDB.

- :class:`ApiSink` drains the tracker's ``api`` outbox in order: ``PUT
  {api_url}/api/v1/alerts/{key}`` with the whole alert as JSON (``common.alerts.Alert``) and
  ``Authorization: Bearer <service token>``. The API stores the latest version per key, so a
  repeat after a lost answer changes nothing. A change leaves the outbox only once the API
  answered 2xx; while the API is down (connection error, 5xx, 408, 429) it retries with
  exponential backoff and then stops the round, keeping the rest for the next one, so
  nothing is lost and the order holds. A refused token (401/403) stops delivery too (a
  configuration error, logged). Any other 4xx is a change the API will never take: it goes
  to the tracker's dead letters and delivery goes on.
- :class:`InfluxAlertSink` drains the ``influx`` outbox into the ``alert`` measurement.
- :func:`write_results` writes ``dma_kpi`` and ``supply_outlook`` points (recomputed every
  pass, idempotent by series and time, so nothing needs queueing).

The measurements' fields are ``common.schema.ANALYSIS_FIELDS``; tags and times are in
docs/alerts.md ("Alerts in InfluxDB").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import quote

import httpx
import pandas as pd
from pydantic import SecretStr

from analysis.pipeline import Analysis
from analysis.tracker import AlertTracker, OutboxItem, Target
from common.alerts import Alert, AlertStatus
from common.influx import InfluxClient, InfluxRejected, Point, format_fields, series_key
from common.register import County
from common.schema import ANALYSIS_FIELDS, to_millis

log = logging.getLogger(__name__)

PLAN_LEVEL_NUMBER: Final = {"IV": 4, "III": 3, "II": 2, "I": 1}
_RETRYABLE: Final = {408, 425, 429}
_REFUSED: Final = {401, 403}


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one drain of an outbox did."""

    delivered: int
    dead_lettered: int
    pending: int
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.pending == 0


class ApiUnavailable(RuntimeError):
    """The ticket service could not be reached or answered 5xx, 408 or 429."""


class ApiRefused(RuntimeError):
    """The ticket service refused our service token (401/403)."""


class ApiSink:
    """PUTs outbox changes to the ticket service (see the module documentation).

    ``attempts``: tries per change before the round stops; the waits between them start at
    ``backoff_s`` and double. ``sleep`` is injectable so callers can stop early.
    """

    def __init__(self, api_url: str, token: SecretStr | None, *, timeout_s: float = 10.0,
                 attempts: int = 4, backoff_s: float = 0.5,
                 http: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self._http = http or httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout_s,
                                          headers=headers)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def put(self, alert: Alert) -> int:
        """PUT one alert; its HTTP status. Raises ApiUnavailable / ApiRefused as documented."""
        try:
            response = self._http.put(f"/api/v1/alerts/{quote(alert.key, safe=':')}",
                                      content=alert.model_dump_json(),
                                      headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"ticket service: {exc}") from exc
        if response.status_code >= 500 or response.status_code in _RETRYABLE:
            raise ApiUnavailable(f"ticket service {response.status_code}: "
                                 f"{response.text[:300]}")
        if response.status_code in _REFUSED:
            raise ApiRefused(f"ticket service refused the service token "
                             f"({response.status_code}): {response.text[:300]}")
        return response.status_code

    def _put_with_retry(self, alert: Alert) -> int:
        wait = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                return self.put(alert)
            except ApiUnavailable:
                if attempt == self.attempts:
                    raise
                log.info("ticket service unavailable (try %d of %d), retrying in %.1f s",
                         attempt, self.attempts, wait)
                self._sleep(wait)
                wait *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def deliver(self, tracker: AlertTracker, batch: int = 200) -> Delivery:
        """Send every pending change in order until done or the API is unavailable."""
        delivered = dead = 0
        error: str | None = None
        while error is None:
            items = tracker.pending(Target.API, batch)
            if not items:
                break
            for item in items:
                try:
                    status = self._put_with_retry(item.alert)
                except (ApiUnavailable, ApiRefused) as exc:
                    error = str(exc)
                    log.warning("alert delivery paused, %d pending: %s",
                                tracker.pending_count(Target.API), exc)
                    break
                if status < 300:
                    tracker.mark_delivered([item])
                    delivered += 1
                else:
                    tracker.dead_letter(item, f"HTTP {status}")
                    dead += 1
        return Delivery(delivered, dead, tracker.pending_count(Target.API), error)


def _alert_time_ns(alert: Alert) -> int:
    """The change's time in ns: ``resolved_at`` for a resolution, else ``updated_at``."""
    moment = alert.resolved_at if alert.status is AlertStatus.RESOLVED and alert.resolved_at \
        else alert.updated_at
    return to_millis(moment) * 1_000_000


def alert_line(alert: Alert) -> str:
    """The ``alert`` measurement's point for one change, as line protocol (ns precision).

    One series per alert: the key is a tag (two alerts of one kind on one device, say two
    quality parameters of one analyser, never share a series) and the severity a field, so
    an escalation moves the alert's one series on rather than leaving the old severity's
    series open.
    """
    place = alert.place
    tags = {"kind": alert.kind.value, "alert_key": alert.key,
            "village": place.village or "", "dma": place.dma or "",
            "device": place.device or place.household or ""}
    fields: dict[str, float | int | bool | str] = {
        "key": alert.key, "open": alert.status is AlertStatus.OPEN, "title": alert.title,
        "severity": alert.severity.value}
    return f"{series_key('alert', tags)} {format_fields(fields)} {_alert_time_ns(alert)}"


class InfluxAlertSink:
    """Writes the tracker's ``influx`` outbox as ``alert`` points, in batches."""

    def __init__(self, client: InfluxClient) -> None:
        self.client = client

    def deliver(self, tracker: AlertTracker, batch: int = 1000) -> Delivery:
        """Write pending changes; stops (keeping them) when InfluxDB is unavailable."""
        delivered = dead = 0
        while items := tracker.pending(Target.INFLUX, batch):
            try:
                self.client.write_lines([alert_line(i.alert) for i in items], precision="ns")
            except InfluxRejected:
                refused = self._one_by_one(tracker, items)
                dead += refused
                delivered += len(items) - refused
                continue
            tracker.mark_delivered(items)
            delivered += len(items)
        return Delivery(delivered, dead, tracker.pending_count(Target.INFLUX))

    def _one_by_one(self, tracker: AlertTracker, items: Iterable[OutboxItem]) -> int:
        dead = 0
        for item in items:
            try:
                self.client.write_lines([alert_line(item.alert)], precision="ns")
            except InfluxRejected as exc:
                tracker.dead_letter(item, str(exc))
                dead += 1
            else:
                tracker.mark_delivered([item])
        return dead


def plan_level_number(value: object) -> int:
    """Plan level as stored: 0 none, 4 = IV, 3 = III, 2 = II, 1 = I (numbers pass through)."""
    if isinstance(value, str):
        return PLAN_LEVEL_NUMBER.get(value, 0)
    if isinstance(value, int | float) and math.isfinite(value):
        return int(value)
    return 0


def _fields(row: pd.Series, names: dict[str, str]) -> dict[str, float | int | bool | str]:
    fields: dict[str, float | int | bool | str] = {}
    for name, kind in names.items():
        value = row.get(name)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        if name == "plan_level":
            fields[name] = plan_level_number(value)
        elif kind == "float":
            number = float(value)
            if math.isfinite(number):
                fields[name] = number
        elif kind == "integer":
            fields[name] = int(value)
    return fields


def kpi_points(dma_days: pd.DataFrame, utc_offset_hours: float) -> list[Point]:
    """``dma_kpi`` points: per DMA and local day, stamped at the local day's start."""
    if dma_days.empty:
        return []
    names = ANALYSIS_FIELDS["dma_kpi"]
    starts = (pd.to_datetime(dma_days["day"]) - pd.Timedelta(hours=utc_offset_hours)
              ).dt.tz_localize("UTC")
    points = []
    for (_, row), start in zip(dma_days.iterrows(), starts, strict=True):
        fields = _fields(row, names)
        if fields:
            points.append(Point("dma_kpi", {"dma": str(row["dma"]), "village": str(row["village"])},
                                fields, to_millis(start.to_pydatetime())))
    return points


def supply_points(supply: pd.DataFrame, register: County, now: datetime) -> list[Point]:
    """``supply_outlook`` points: per village scheme, stamped at the pass time."""
    if supply.empty or "village" not in supply.columns:
        return []
    township = {v.id: v.township for v in register.villages}
    names = ANALYSIS_FIELDS["supply_outlook"]
    points = []
    for _, row in supply.iterrows():
        village = str(row["village"])
        fields = _fields(row, names)
        if fields:
            points.append(Point("supply_outlook",
                                {"village": village, "township": township.get(village, "")},
                                fields, to_millis(now)))
    return points


def write_results(client: InfluxClient, analysis: Analysis, register: County) -> int:
    """Write the pass's ``dma_kpi`` and ``supply_outlook`` points; how many were written."""
    points = kpi_points(analysis.dma_days, register.utc_offset_hours)
    points += supply_points(analysis.supply, register, analysis.now)
    client.write_points(points)
    return len(points)
