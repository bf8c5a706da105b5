"""Read InfluxDB (or the offline CSV) into the long readings format ``analyse`` takes.

What is read, per measurement (the *plan*, :func:`default_plan`), aggregating in InfluxDB
where the detectors do not need every point:

==============  =======================================================================
measurement     rows in the long frame
==============  =======================================================================
``meter``       ``volume_m3``: the last per device and UTC hour, stamped at the hour's
                start (meters read on the hour). State fields (``valve``, ``battery_low``,
                ``tamper``, ``status``, ``balance_yuan``): only readings with the valve
                not open, a low battery or tamper, plus each meter's latest reading per
                query chunk (day): a normal meter adds one state row a day, not 24.
                One raw query per chunk, summarised in Python (:func:`meter_rows`).
``dma_inflow``  every point (15-minute flow and cumulative volume).
``pump``        every point over the last ``detail`` hours; older hours as hourly means
``tank``        (stamped at the half hour; ``fault_code`` as the hourly maximum; the
``quality``     ``running`` flag only in the detail window).
==============  =======================================================================

Queries are chunked by UTC day (a re-read asks the questions a full read would) and, for
meters, by groups of DMAs sized from the register so that no answer exceeds ``max_points``
points; two run at once (InfluxDB works on one while
Python parses the other). :class:`ReadingCache` keeps the history in memory between worker
passes and reads only the newest hours each pass, so a pass costs a few hours of queries,
not the whole lookback.

The offline CSV (:func:`read_csv`, :func:`write_csv`) is the same long format with ISO 8601
times: ``time,device,kind,field,value``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.readings import COLUMNS, VALVE_CODES, require_aware
from common.influx import InfluxClient, Series
from common.register import County
from common.schema import FIELDS

log = logging.getLogger(__name__)

HOUR = pd.Timedelta(hours=1)
_HOUR_MS = 3_600_000
NO_OFFSET = pd.Timedelta(0)
Span = Literal["all", "history", "detail"]
_METER_STATES = ("valve", "battery_low", "tamper", "status", "balance_yuan")


@dataclass(frozen=True, slots=True)
class Selection:
    """One query shape: which fields of a measurement, raw or aggregated, over which span.

    ``aggregates``: field -> InfluxQL function (``last``, ``mean``, ``max``) for hourly
    buckets; empty reads ``fields`` raw. ``latest``: one row per device and chunk, its
    latest reading (``last()`` of the first field with the others at the same point).
    ``span``: ``history`` is before the detail window, ``detail`` inside it.
    ``meter_summary``: ``fields`` (``volume_m3`` and the meter states) are read raw in one
    query and summarised in Python as three queries would have answered (:func:`meter_rows`):
    InfluxDB spends its time per series and point, not per field, so one pass over a
    county's meters costs about half of three.
    """

    measurement: str
    fields: tuple[str, ...]
    aggregates: Mapping[str, str] = field(default_factory=dict)
    label_offset: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(0))
    where: str = ""
    latest: bool = False
    per_dma: bool = False
    span: Span = "all"
    meter_summary: bool = False

    def query(self, start_ms: int, end_ms: int, dma_filter: str) -> str:
        """The InfluxQL for ``[start_ms, end_ms)`` (epoch milliseconds)."""
        conditions = [f"time >= {start_ms}ms", f"time < {end_ms}ms"]
        conditions += [c for c in (self.where, dma_filter) if c]
        where = " AND ".join(conditions)
        source = f'"{self.measurement}"'
        if self.aggregates:
            columns = ", ".join(f'{fn}("{name}") AS "{name}"'
                                for name, fn in self.aggregates.items())
            return (f"SELECT {columns} FROM {source} WHERE {where} "
                    'GROUP BY time(1h), "device" fill(none)')
        if self.latest:
            first, *others = self.fields
            columns = ", ".join([f'last("{first}") AS "{first}"'] + [f'"{n}"' for n in others])
            return f'SELECT {columns} FROM {source} WHERE {where} GROUP BY "device"'
        columns = ", ".join(f'"{name}"' for name in self.fields)
        return f'SELECT {columns} FROM {source} WHERE {where} GROUP BY "device"'


def _hourly(measurement: str, aggregates: dict[str, str]) -> Selection:
    return Selection(measurement, tuple(aggregates), aggregates,
                     label_offset=pd.Timedelta(minutes=30), span="history")


def _raw(measurement: str, span: Span = "all") -> Selection:
    names = tuple(n for n in FIELDS[measurement] if n != "clock_offset_s")
    return Selection(measurement, names, span=span)


def default_plan() -> list[Selection]:
    """What the worker reads (the table in the module documentation)."""
    pump_means = {n: "mean" for n in ("frequency_hz", "current_a", "flow_m3h",
                                       "outlet_pressure_mpa", "well_level_m", "run_hours")}
    return [
        Selection("meter", ("volume_m3", *_METER_STATES), per_dma=True, meter_summary=True),
        _raw("dma_inflow"),
        _raw("pump", "detail"),
        _hourly("pump", pump_means | {"fault_code": "max"}),
        _raw("tank", "detail"),
        _hourly("tank", {"level_m": "mean", "volume_m3": "mean"}),
        _raw("quality", "detail"),
        _hourly("quality", {n: "mean" for n in FIELDS["quality"]}),
    ]


def raw_plan() -> list[Selection]:
    """Every stored point of every reading measurement (``export --raw``)."""
    return [Selection(m, tuple(FIELDS[m]), per_dma=(m == "meter"))
            for m in ("meter", "dma_inflow", "pump", "tank", "quality")]


def history_aggregates(plan: Sequence[Selection]) -> dict[str, dict[str, str]]:
    """measurement -> field -> function of the plan's hourly history selections."""
    return {s.measurement: dict(s.aggregates) for s in plan if s.span == "history"}


def dma_groups(register: County | None, hours: float, max_points: int) -> list[list[str]]:
    """DMAs in groups whose meters x ``hours`` stay within ``max_points`` ([[]]: no filter)."""
    if register is None or not register.dmas:
        return [[]]
    meters: dict[str, int] = {d.id: 0 for d in register.dmas}
    for household in register.households:
        meters[household.dma] = meters.get(household.dma, 0) + 1
    budget = max(1, int(max_points // max(hours, 1.0)))
    groups: list[list[str]] = [[]]
    load = 0
    for dma, count in meters.items():
        if groups[-1] and load + count > budget:
            groups.append([])
            load = 0
        groups[-1].append(dma)
        load += count
    return groups


def _dma_filter(dmas: list[str]) -> str:
    if not dmas:
        return ""
    return "(" + " OR ".join(f"\"dma\" = '{d}'" for d in dmas) + ")"


def _numeric(name: str, values: pd.Series) -> pd.Series:
    """Field values as floats: booleans 0/1, meter valve by ``VALVE_CODES``."""
    if name == "valve":
        return values.map(VALVE_CODES).astype(float)
    if values.dtype == object:
        return pd.to_numeric(values.map(lambda v: float(v) if isinstance(v, bool) else v),
                             errors="coerce").astype(float)
    return values.astype(float)


def to_wide(result: Sequence[Series]) -> pd.DataFrame:
    """InfluxQL series (``GROUP BY "device"``, epoch ms) as one frame: ``time`` (epoch ms),
    ``device``, then the answer's columns; empty when no series has values."""
    rows: list[list[Any]] = []
    devices: list[str] = []
    columns: list[str] = []
    for series in result:
        if not series.values:
            continue
        columns = series.columns
        rows.extend(series.values)
        devices.extend([series.tags.get("device", "")] * len(series.values))
    if not rows:
        return pd.DataFrame()
    wide = pd.DataFrame(rows, columns=columns)
    wide.insert(1, "device", devices)
    return wide


def wide_to_long(wide: pd.DataFrame, kind: str,
                 label_offset: pd.Timedelta = NO_OFFSET) -> pd.DataFrame:
    """A :func:`to_wide` frame as long rows (every column after ``device``); nulls dropped."""
    if wide.empty:
        return empty_frame()
    times = pd.to_datetime(wide["time"].to_numpy(dtype=np.int64), unit="ms", utc=True)
    times = times + label_offset
    device = wide["device"].to_numpy(dtype=object)
    parts = []
    for name in wide.columns[2:]:
        values = _numeric(name, wide[name])
        keep = values.notna().to_numpy()
        parts.append(pd.DataFrame({"time": times[keep], "device": device[keep], "kind": kind,
                                   "field": name, "value": values.to_numpy()[keep]}))
    return _categorised(pd.concat(parts, ignore_index=True))


def to_long(result: Sequence[Series], kind: str,
            label_offset: pd.Timedelta = NO_OFFSET) -> pd.DataFrame:
    """InfluxQL series (``GROUP BY "device"``, epoch ms) as long rows; nulls dropped."""
    return wide_to_long(to_wide(result), kind, label_offset)


def meter_rows(result: Sequence[Series]) -> pd.DataFrame:
    """Raw meter readings (``volume_m3`` and the states) summarised as the plan reads meters.

    ``volume_m3``: the last reading per device and UTC hour, stamped at the hour's start
    (InfluxQL ``last() ... GROUP BY time(1h)``). States: the readings with the valve not
    open, a low battery or tamper, plus each device's latest reading with a valve state
    (``last("valve")`` and the other states of that point); a reading that is both counts
    once.
    """
    wide = to_wide(result)
    if wide.empty:
        return empty_frame()
    # Each device's rows arrive in time order (one series per device).
    volumes = wide.loc[wide["volume_m3"].notna(), ["time", "device", "volume_m3"]]
    volumes = volumes.assign(time=volumes["time"] // _HOUR_MS * _HOUR_MS)
    volumes = volumes.drop_duplicates(["device", "time"], keep="last")
    valve = wide["valve"]
    abnormal = ((valve.notna() & (valve != "open")) | (wide["battery_low"] == True)  # noqa: E712
                | (wide["tamper"] == True)).to_numpy()  # noqa: E712
    with_valve = valve.notna().to_numpy()
    latest = np.zeros(len(wide), dtype=bool)
    latest[with_valve] = ~wide.loc[with_valve, "device"].duplicated(keep="last").to_numpy()
    states = wide.loc[abnormal | latest, ["time", "device", *_METER_STATES]]
    return concat([wide_to_long(volumes, "meter"), wide_to_long(states, "meter")])


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"),
                         "device": pd.Series([], dtype=str), "kind": pd.Series([], dtype=str),
                         "field": pd.Series([], dtype=str), "value": pd.Series([], dtype=float)})


def _categorised(frame: pd.DataFrame) -> pd.DataFrame:
    """Device, kind and field as categories: a long frame repeats them on every row."""
    for name in ("device", "kind", "field"):
        frame[name] = frame[name].astype("category")
    return frame


def concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Long frames joined, categories unified, in time order."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_frame()
    if len(frames) > 1:
        frames = _shared_categories(frames)
    joined = pd.concat(frames, ignore_index=True)
    return _categorised(joined).sort_values("time", kind="stable").reset_index(drop=True)


def _shared_categories(frames: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    """The frames with device, kind and field categorical over the same categories.

    ``pd.concat`` keeps a categorical column only when every frame has the same categories;
    recoding each frame's codes to the union is cheap, where a round trip through strings
    costs seconds on a county's history.
    """
    out = [frame.copy(deep=False) for frame in frames]
    for name in ("device", "kind", "field"):
        columns = [frame[name] if isinstance(frame[name].dtype, pd.CategoricalDtype)
                   else frame[name].astype(str).astype("category") for frame in out]
        categories = pd.Index(np.concatenate(
            [column.cat.categories.to_numpy(dtype=object) for column in columns])).unique()
        dtype = pd.CategoricalDtype(categories)
        for frame, column in zip(out, columns, strict=True):
            frame[name] = column.astype(dtype)
    return out


def _hour_floor(moment: pd.Timestamp) -> pd.Timestamp:
    return moment.floor("h")


def _floor(moment: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """``moment`` down to a whole multiple of ``step`` since the epoch (UTC midnights)."""
    return pd.Timestamp(moment.value // step.value * step.value, tz="UTC")


def _millis(moment: pd.Timestamp) -> int:
    return int(moment.value // 1_000_000)


@dataclass(frozen=True, slots=True)
class _Task:
    selection: Selection
    start: pd.Timestamp
    end: pd.Timestamp
    dmas: list[str]

    def query(self) -> str:
        return self.selection.query(_millis(self.start), _millis(self.end),
                                    _dma_filter(self.dmas))


class InfluxSource:
    """Reads the plan's selections from InfluxDB for a time range, chunked.

    ``detail``: how far back from the end pump, tank and analyser data are read raw.
    ``chunk``: the time span of one query. ``max_points``: bound for a meter query's answer.
    """

    def __init__(self, client: InfluxClient, register: County | None = None, *,
                 plan: Sequence[Selection] | None = None,
                 detail: timedelta = timedelta(hours=72), chunk: timedelta = timedelta(days=1),
                 max_points: int = 250_000, parallel: int = 2) -> None:
        self.client = client
        self.plan = list(plan if plan is not None else default_plan())
        self.detail = pd.Timedelta(detail)
        self.chunk = pd.Timedelta(chunk)
        self.parallel = parallel
        self._groups = dma_groups(register, self.chunk / HOUR, max_points)

    def detail_start(self, end: datetime) -> pd.Timestamp:
        """Where the raw detail window begins for a read ending at ``end`` (whole hour)."""
        return _hour_floor(require_aware(end, "end") - self.detail)

    def _tasks(self, start: pd.Timestamp, end: pd.Timestamp) -> list[_Task]:
        detail_start = max(start, self.detail_start(end.to_pydatetime()))
        tasks: list[_Task] = []
        for selection in self.plan:
            low, high = {"all": (start, end), "history": (start, detail_start),
                         "detail": (detail_start, end)}[selection.span]
            groups = self._groups if selection.per_dma else [[]]
            moment = low
            while moment < high:
                upper = min(high, _floor(moment, self.chunk) + self.chunk)
                tasks.extend(_Task(selection, moment, upper, dmas) for dmas in groups)
                moment = upper
        return tasks

    def _run(self, task: _Task) -> pd.DataFrame:
        result = self.client.query(task.query(), epoch="ms")
        if task.selection.meter_summary:
            return meter_rows(result)
        return to_long(result, task.selection.measurement, task.selection.label_offset)

    def chunks(self, start: datetime, end: datetime) -> Iterator[pd.DataFrame]:
        """Long frames, one per query, for readings in ``[start, end)`` (hours aligned).

        Raises ``common.influx.InfluxUnavailable`` / ``InfluxRejected`` from the client.
        """
        low = _hour_floor(require_aware(start, "start"))
        high = require_aware(end, "end")
        tasks = self._tasks(low, high)
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            yield from pool.map(self._run, tasks)

    def read(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Every chunk of ``[start, end)`` as one time-sorted long frame."""
        return concat(list(self.chunks(start, end)))


def coarsen(frame: pd.DataFrame, before: pd.Timestamp,
            aggregates: Mapping[str, Mapping[str, str]],
            since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Rows of ``aggregates``' measurements older than ``before`` as hourly aggregates.

    Mirrors the plan's history queries, so a cached frame that has aged looks like one read
    fresh: per device, field and UTC hour the ``mean`` or ``max``, stamped at the half hour;
    fields without an aggregate (flags) are dropped there. Other rows pass unchanged.
    ``since``: rows before it are hourly already (an earlier pass coarsened them) and are
    left alone; coarsening them again would change nothing but cost time.
    """
    old = (frame["time"] < before) & frame["kind"].isin(list(aggregates)).to_numpy()
    if since is not None:
        old &= frame["time"] >= since
    if not old.any():
        return frame
    aged = frame[old]
    function = aged["kind"].astype(str) + "|" + aged["field"].astype(str)
    wanted = {f"{kind}|{name}": fn for kind, fields in aggregates.items()
              for name, fn in fields.items()}
    aged = aged[function.isin(list(wanted)).to_numpy()].assign(
        fn=function.map(wanted), hour=aged["time"].dt.floor("h"))
    pieces = []
    for fn, rows in aged.groupby("fn", observed=True):
        grouped = rows.groupby(["hour", "device", "kind", "field"], observed=True)["value"]
        pieces.append(getattr(grouped, str(fn))().reset_index())
    hourly = (pd.concat(pieces, ignore_index=True) if pieces else empty_frame())
    if not hourly.empty:
        hourly = hourly.rename(columns={"hour": "time"})
        hourly["time"] = hourly["time"] + pd.Timedelta(minutes=30)
    return concat([frame[~old], hourly[list(COLUMNS)]])


class ReadingCache:
    """The worker's history in memory: a full read now and then, the newest hours each pass.

    :meth:`refresh` reads everything in ``lookback`` on the first call, every ``reload`` and
    when time goes backwards; otherwise only from ``reread`` before the previous read's end
    (catching readings that arrived late), replacing the cached rows from there on. Pump,
    tank and analyser rows that leave the detail window are coarsened as the history
    queries would have returned them.
    """

    def __init__(self, source: InfluxSource, *, lookback: timedelta, reread: timedelta,
                 reload: timedelta) -> None:
        self.source = source
        self.lookback = pd.Timedelta(lookback)
        self.reread = pd.Timedelta(reread)
        self.reload = pd.Timedelta(reload)
        self._aggregates = history_aggregates(source.plan)
        self._frame: pd.DataFrame | None = None
        self._loaded_at: pd.Timestamp | None = None
        self._read_until: pd.Timestamp | None = None
        #: cached rows before this are hourly aggregates already (see :func:`coarsen`)
        self._coarse_before: pd.Timestamp | None = None
        #: what the last refresh did: "full" or "incremental"
        self.last_refresh = ""

    @property
    def frame(self) -> pd.DataFrame:
        return self._frame if self._frame is not None else empty_frame()

    def refresh(self, end: datetime) -> pd.DataFrame:
        """The long readings in ``[end - lookback, end)``, reading InfluxDB as needed."""
        stop = require_aware(end, "end")
        start = _hour_floor(stop - self.lookback)
        detail_start = max(start, self.source.detail_start(stop.to_pydatetime()))
        if (self._frame is None or self._loaded_at is None or self._read_until is None
                or stop - self._loaded_at >= self.reload or stop < self._read_until):
            frame = self.source.read(start.to_pydatetime(), stop.to_pydatetime())
            self._loaded_at = stop
            self.last_refresh = "full"
        else:
            since = max(start, _hour_floor(self._read_until - self.reread))
            fresh = self.source.read(since.to_pydatetime(), stop.to_pydatetime())
            kept = self._frame[(self._frame["time"] >= start) & (self._frame["time"] < since)]
            frame = coarsen(concat([kept, fresh]), detail_start, self._aggregates,
                            since=self._coarse_before)
            self.last_refresh = "incremental"
        self._frame = frame
        self._read_until = stop
        self._coarse_before = detail_start
        log.info("readings: %s refresh, %d rows in memory", self.last_refresh, len(frame))
        return frame


def read_csv(path: Path) -> pd.DataFrame:
    """The offline long-format CSV (``time,device,kind,field,value``; ISO 8601 times).

    Raises
    ------
    ValueError
        A column is missing or a time cannot be parsed.
    """
    frame = pd.read_csv(path, dtype={"device": str, "kind": str, "field": str})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; need {','.join(COLUMNS)}")
    try:
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable time: {exc}") from exc
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame[list(COLUMNS)]


def write_csv(frame: pd.DataFrame, path: Path, *, append: bool = False) -> int:
    """Write long rows as the offline CSV (UTC ISO 8601 times); returns the rows written."""
    out = frame[list(COLUMNS)].copy()
    out["time"] = out["time"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out.to_csv(path, mode="a" if append else "w", header=not append, index=False)
    return len(out)
