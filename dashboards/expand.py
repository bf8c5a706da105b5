"""Expand panel queries exactly as Grafana does before they reach the database.

Two stages, as in Grafana 11:

1. The browser interpolates dashboard template variables (``$village``, ``${dma}``,
   ``[[township]]``) with the data source's formatter: InfluxQL values are regex-escaped and
   a multi-value selection becomes ``(a|b)``; a custom "All" value (``.*``) is inserted raw;
   PostgreSQL values are quoted literals joined by commas.
2. The backend replaces its macros: InfluxQL ``$timeFilter``, ``$interval``,
   ``$__interval_ms`` and ``$__interval`` (``pkg/tsdb/influxdb/influxql/models/query.go``);
   PostgreSQL ``$__timeFilter(col)``, ``$__timeFrom()``, ``$__timeTo()``, ``$__time(col)``,
   ``$__timeGroup(col, '1h')``, ``$__timeGroupAlias(...)``, ``$__unixEpochFilter(col)``,
   ``$__interval`` and ``$__interval_ms``.

``$__interval`` follows the browser's ``calculateInterval``: the range divided by the
panel's max data points, never below the data source's minimum interval, rounded to
Grafana's table of "nice" intervals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

#: Grafana's default when a panel sets no max data points is its width in pixels.
DEFAULT_MAX_DATA_POINTS: Final = 1000

_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
              "w": 604_800_000, "y": 31_536_000_000}

#: (upper bound, rounded value) in ms: Grafana's ``roundInterval`` (@grafana/data rangeutil)
_ROUNDING: Final = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
    (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
    (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000),
    (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
    (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)
_YEAR_MS: Final = 31_536_000_000

#: templateSrv's variable pattern: $name, [[name:format]], ${name.path:format}
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
_INFLUX_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")
_SQL_MACRO = re.compile(r"\$(__\w+)\(([^)]*)\)")


class ExpansionError(ValueError):
    """A query uses a macro or format this expander (and Grafana) cannot expand."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time picker, as absolute UTC instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError("time range ends before it starts")

    @property
    def start_ms(self) -> int:
        return _epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        return _epoch_ms(self.end)

    @classmethod
    def last(cls, duration: timedelta, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - duration, end)


def _epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class Variable:
    """A template variable as the dashboard currently has it."""

    name: str
    selected: tuple[str, ...]
    options: tuple[str, ...] = ()
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    selected_all: bool = False


Formatter = Callable[[Sequence[str], Variable], str]


def parse_duration_ms(text: str) -> int:
    """``"5m"`` -> 300000: Grafana's interval syntax (ms, s, m, h, d, w, y)."""
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h|d|w|y)\s*", text)
    if not match:
        raise ExpansionError(f"not an interval: {text!r}")
    return int(match.group(1)) * _MS[match.group(2)]


def round_interval(interval_ms: float) -> int:
    for bound, rounded in _ROUNDING:
        if interval_ms < bound:
            return rounded
    return _YEAR_MS


def calculate_interval_ms(time_range: TimeRange, max_data_points: int = DEFAULT_MAX_DATA_POINTS,
                          min_interval: str | None = None) -> int:
    """``$__interval_ms`` for a panel: range / points, at least ``min_interval``, rounded."""
    if max_data_points <= 0:
        raise ValueError("max_data_points must be positive")
    raw = (time_range.end_ms - time_range.start_ms) / max_data_points
    low_limit = parse_duration_ms(min_interval) if min_interval else 0
    if raw < low_limit:
        raw = low_limit
    return max(round_interval(raw), low_limit)


def format_interval(interval_ms: int) -> str:
    """Grafana's ``gtime.FormatInterval``: the largest whole unit, e.g. ``5m``, ``1d``."""
    for unit, size in (("y", _YEAR_MS), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000),
                       ("s", 1000), ("ms", 1)):
        if interval_ms >= size:
            return f"{interval_ms // size}{unit}"
    return "1ms"


# --------------------------------------------------------------------------- variables


def influx_regex_escape(value: str) -> str:
    """``influxSpecialRegexEscape``: backslashes doubled, regex specials escaped."""
    return _INFLUX_REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value.replace("\\", "\\\\"))


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def influx_formatter(values: Sequence[str], variable: Variable) -> str:
    """The InfluxDB data source's ``interpolateQueryExpr``."""
    if not variable.multi and not variable.include_all:
        value = values[0] if values else ""
        return value if _is_number(value) else re.sub(r"[.*+?^${}()|\[\]\\]",
                                                      lambda m: "\\" + m.group(0), value)
    escaped = [influx_regex_escape(value) for value in values]
    if len(escaped) == 1:
        return escaped[0]
    return "(" + "|".join(escaped) + ")"


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_formatter(values: Sequence[str], variable: Variable) -> str:
    """The SQL data sources' ``interpolateVariable``: quoted literals joined by commas."""
    if not variable.multi and not variable.include_all and len(values) == 1:
        return values[0].replace("'", "''")
    return ",".join(_quote_literal(value) for value in values)


_NAMED_FORMATS: Final[dict[str, Formatter]] = {
    "raw": lambda values, _: ",".join(values),
    "csv": lambda values, _: ",".join(values),
    "pipe": lambda values, _: "|".join(values),
    "regex": lambda values, _: (influx_regex_escape(values[0]) if len(values) == 1 else
                                "(" + "|".join(influx_regex_escape(v) for v in values) + ")"),
    "singlequote": lambda values, _: ",".join(_quote_literal(v) for v in values),
    "sqlstring": lambda values, _: ",".join(_quote_literal(v) for v in values),
}


def interpolate_variables(text: str, variables: Mapping[str, Variable],
                          formatter: Formatter) -> str:
    """``templateSrv.replace``: unknown ``$names`` (macros) are left for the backend."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        format_name = match.group(3) or match.group(6)
        variable = variables.get(name)
        if variable is None:
            return match.group(0)
        if variable.selected_all:
            if variable.all_value is not None and format_name != "text":
                return interpolate_variables(variable.all_value, variables, formatter)
            values: Sequence[str] = variable.options
        else:
            values = variable.selected
        if format_name is None:
            return formatter(values, variable)
        named = _NAMED_FORMATS.get(format_name)
        if named is None:
            raise ExpansionError(f"variable format {format_name!r} is not supported")
        return named(values, variable)

    return _VARIABLE.sub(replace, text)


# --------------------------------------------------------------------------- macros


def expand_influxql(query: str, time_range: TimeRange, variables: Mapping[str, Variable],
                    interval_ms: int) -> str:
    """A raw InfluxQL panel query as the InfluxDB server receives it from Grafana."""
    text = interpolate_variables(query, variables, influx_formatter)
    interval_text = format_interval(interval_ms)
    text = text.replace("$timeFilter",
                        f"time >= {time_range.start_ms}ms and time <= {time_range.end_ms}ms")
    text = text.replace("$interval", interval_text)
    text = text.replace("$__interval_ms", str(interval_ms))
    text = text.replace("$__interval", interval_text)
    if "$__" in text:
        raise ExpansionError(f"unexpanded macro left in InfluxQL: {text}")
    return text


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sql_macro(name: str, args: list[str], time_range: TimeRange) -> str:
    start, end = _rfc3339(time_range.start), _rfc3339(time_range.end)
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise ExpansionError(f"${name} needs a column and an interval")
        seconds = parse_duration_ms(args[1].strip("'\" ")) // 1000
        grouped = f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
        return grouped + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        return (f"{args[0]} >= {time_range.start_ms // 1000} AND "
                f"{args[0]} <= {time_range.end_ms // 1000}")
    if name == "__unixEpochFrom":
        return str(time_range.start_ms // 1000)
    if name == "__unixEpochTo":
        return str(time_range.end_ms // 1000)
    raise ExpansionError(f"PostgreSQL macro ${name} is not supported")


def expand_sql(query: str, time_range: TimeRange, variables: Mapping[str, Variable],
               interval_ms: int) -> str:
    """A raw PostgreSQL panel query as the database receives it from Grafana."""
    text = interpolate_variables(query, variables, sql_formatter)
    text = text.replace("$__interval_ms", str(interval_ms))
    text = text.replace("$__interval", format_interval(interval_ms))
    text = _SQL_MACRO.sub(
        lambda m: _sql_macro(m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()],
                             time_range), text)
    if "$__" in text:
        raise ExpansionError(f"unexpanded macro left in SQL: {text}")
    return text
