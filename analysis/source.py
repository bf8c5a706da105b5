"""Read InfluxDB (or the offline CSV) into the long readings format ``analyse`` takes.

What is read, per measurement (the *plan*, :func:`default_plan`), aggregating in InfluxDB
where the detectors do not need every point:

==============  =======================================================================
measurement     rows in the long frame
==============  =======================================================================
``meter``       ``volume_m3``: the last per device and UTC hour, stamped at the hour's
                start (meters read on the hour). State fields (``valve``, ``battery_low``,
                ``tamper``, ``balance_yuan``): only readings with the valve not open, a
                low battery or tamper, plus each meter's latest reading per query chunk
                (day): a normal meter adds one state row a day, not 24. One raw query
                per chunk, summarised in Python (:func:`meter_rows`). The meter's
                ``status`` word is not read: no detector uses it, and every field read
                costs InfluxDB time on every meter point.
``dma_inflow``  every point (15-minute flow and cumulative volume).
``pump``        every point over the last ``detail`` hours; older hours as hourly means
``tank``        (stamped at the half hour; ``fault_code`` as the hourly maximum; the
``quality``     ``running`` flag only in the detail window).
==============  =======================================================================

Queries are chunked by UTC day (a re-read asks the questions a full read would) and, for
meters, by groups of DMAs sized from the register so that no answer exceeds ``max_points``
points; two run at once (InfluxDB works on one while
Python parses the other). Answers are InfluxDB's CSV (:meth:`InfluxClient.query_csv`),
parsed by pandas' C reader (:func:`parse_csv`) into categorical columns: no Python object per
point. :class:`ReadingCache` keeps the history in memory between worker passes, in time
order, and reads only the newest hours each pass, so a pass costs a few hours of queries,
not the whole lookback; its snapshot file lets a restarted worker do the same.

The offline CSV (:func:`read_csv`, :func:`write_csv`) is the same long format with ISO 8601
times: ``time,device,kind,field,value``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.readings import COLUMNS, VALVE_CODES, require_aware
from common.influx import InfluxClient
from common.register import County
from common.schema import FIELDS

log = logging.getLogger(__name__)

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
_HOUR_MS = 3_600_000
NO_OFFSET = pd.Timedelta(0)
Span = Literal["all", "history", "detail"]
_METER_STATES = ("valve", "battery_low", "tamper", "balance_yuan")


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
    if name == "valve" and not pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(object).map(VALVE_CODES).astype(float)
    if isinstance(values.dtype, pd.CategoricalDtype):
        numbers = _category_numbers(values.cat.categories)
        codes = values.cat.codes.to_numpy()
        return pd.Series(np.where(codes >= 0, numbers[codes], np.nan), index=values.index)
    if values.dtype == object:
        return pd.to_numeric(values.map(lambda v: float(v) if isinstance(v, bool) else v),
                             errors="coerce").astype(float)
    return values.astype(float)


def _category_numbers(categories: pd.Index) -> np.ndarray:
    """CSV text categories as floats: ``true``/``false`` 1/0, numbers as such, else NaN."""
    booleans = {"true": 1.0, "false": 0.0}
    text = pd.Series(categories.astype(str)).str.lower()  # pandas may infer bool categories
    numbers = pd.to_numeric(text.map(lambda v: booleans.get(v, v)), errors="coerce")
    # one spare NaN at the end: a null cell's code -1 picks it
    return np.append(numbers.to_numpy(dtype=float), np.nan)


def _unescape_tag(text: str) -> str:
    return (text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")
            .replace("\\\\", "\\"))


def parse_csv(body: bytes, measurement: str) -> pd.DataFrame:
    """InfluxDB's CSV answer (``GROUP BY "device"``, epoch ms) as one wide frame.

    Columns: ``time`` (epoch ms), ``device`` (categorical), then the answer's fields: float
    and integer fields as floats, the others (booleans, ``valve``) categorical text. Empty
    when nothing matched. Parsed by pandas' C reader: a county's meter hours in a fraction
    of the time the JSON answer's Python lists take.
    """
    if not body.strip():
        return pd.DataFrame()
    header = body[:body.find(b"\n")].decode().strip().split(",")
    if header[:3] != ["name", "tags", "time"]:
        raise ValueError(f"unexpected CSV answer from InfluxDB: {header[:6]}")
    types = FIELDS.get(measurement, {})
    fields = header[3:]
    dtype: dict[str, Any] = {"tags": "category", "time": np.int64}
    for name in fields:
        numeric = types.get(name) in ("float", "integer")
        dtype[name] = np.float64 if numeric else "category"
    wide = pd.read_csv(io.BytesIO(body), usecols=["tags", "time", *fields], dtype=dtype,
                       keep_default_na=False, na_values=[""], engine="c")
    tags = wide.pop("tags")
    if tags.isna().any():
        tags = tags.cat.add_categories([""]).fillna("")
    names = [_unescape_tag(t.split("device=", 1)[1]) if "device=" in t else ""
             for t in tags.cat.categories.astype(str)]
    device = pd.Categorical.from_codes(tags.cat.codes.to_numpy(), categories=names) \
        if len(set(names)) == len(names) else pd.Categorical(np.asarray(names)[
            tags.cat.codes.to_numpy()])
    wide.insert(1, "device", device)
    return wide


def wide_to_long(wide: pd.DataFrame, kind: str,
                 label_offset: pd.Timedelta = NO_OFFSET) -> pd.DataFrame:
    """A :func:`parse_csv` frame as long rows (every column after ``device``); nulls dropped.

    Built from numpy arrays with categorical codes: no per-row Python objects.
    """
    if wide.empty:
        return empty_frame()
    times = wide["time"].to_numpy(dtype=np.int64) * 1_000_000 + label_offset.value
    device = wide["device"]
    if not isinstance(device.dtype, pd.CategoricalDtype):
        device = device.astype(str).astype("category")
    device_codes = device.cat.codes.to_numpy()
    names = list(wide.columns[2:])
    picks: list[np.ndarray] = []
    values: list[np.ndarray] = []
    field_codes: list[np.ndarray] = []
    for code, name in enumerate(names):
        column = _numeric(name, wide[name]).to_numpy(dtype=float)
        pick = np.flatnonzero(~np.isnan(column))
        picks.append(pick)
        values.append(column[pick])
        field_codes.append(np.full(len(pick), code, dtype=np.int8))
    rows = np.concatenate(picks)
    if not len(rows):
        return empty_frame()
    return pd.DataFrame({
        "time": pd.to_datetime(times[rows], unit="ns", utc=True),
        "device": pd.Categorical.from_codes(device_codes[rows], dtype=device.dtype),
        "kind": pd.Categorical.from_codes(np.zeros(len(rows), dtype=np.int8), [kind]),
        "field": pd.Categorical.from_codes(np.concatenate(field_codes), names),
        "value": np.concatenate(values),
    })


def meter_rows(wide: pd.DataFrame) -> pd.DataFrame:
    """Raw meter readings (``volume_m3`` and the states) summarised as the plan reads meters.

    ``wide``: a :func:`parse_csv` answer. ``volume_m3``: the last reading per device and UTC
    hour, stamped at the hour's start (InfluxQL ``last() ... GROUP BY time(1h)``). States:
    the readings with the valve not open, a low battery or tamper, plus each device's latest
    reading with a valve state (``last("valve")`` and the other states of that point); a
    reading that is both counts once.
    """
    if wide.empty:
        return empty_frame()
    # Each device's rows arrive in time order (one series per device).
    volumes = wide.loc[wide["volume_m3"].notna(), ["time", "device", "volume_m3"]]
    volumes = volumes.assign(time=volumes["time"] // _HOUR_MS * _HOUR_MS)
    volumes = volumes.drop_duplicates(["device", "time"], keep="last")
    states = {name: _numeric(name, wide[name]).to_numpy(dtype=float)
              if name in wide.columns else np.full(len(wide), np.nan)
              for name in _METER_STATES}
    valve = states["valve"]
    with np.errstate(invalid="ignore"):
        abnormal = ((~np.isnan(valve) & (valve != VALVE_CODES["open"]))
                    | (states["battery_low"] == 1.0) | (states["tamper"] == 1.0))
    with_valve = ~np.isnan(valve)
    latest = np.zeros(len(wide), dtype=bool)
    latest[with_valve] = ~wide.loc[with_valve, "device"].duplicated(keep="last").to_numpy()
    keep = abnormal | latest
    state_rows = pd.DataFrame({"time": wide["time"].to_numpy()[keep],
                               "device": wide["device"].array[keep]}
                              | {name: column[keep] for name, column in states.items()})
    return concat([wide_to_long(volumes, "meter"), wide_to_long(state_rows, "meter")])


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"),
                         "device": pd.Series([], dtype=str), "kind": pd.Series([], dtype=str),
                         "field": pd.Series([], dtype=str), "value": pd.Series([], dtype=float)})


def _categorised(frame: pd.DataFrame) -> pd.DataFrame:
    """Device, kind and field as categories: a long frame repeats them on every row."""
    for name in ("device", "kind", "field"):
        if not isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype("category")
    return frame


def concat(frames: Sequence[pd.DataFrame], *, in_order: bool = False) -> pd.DataFrame:
    """Long frames joined, categories unified, in time order.

    ``in_order``: each frame is in time order and ends before the next begins, so no sort
    is needed (a county's 25 million cached rows take seconds to sort).
    """
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_frame()
    if len(frames) > 1:
        frames = _shared_categories(frames)
    joined = _categorised(pd.concat(frames, ignore_index=True))
    if in_order:
        return joined
    return joined.sort_values("time", kind="stable").reset_index(drop=True)


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
        first = columns[0].cat.categories
        if all(column.cat.categories.equals(first) for column in columns[1:]):
            for frame, column in zip(out, columns, strict=True):
                frame[name] = column
            continue
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
        #: the meters of each DMA group (None: every meter, no register to group by)
        self._group_devices: list[list[str] | None] = (
            [None] if self._groups == [[]] or register is None else
            [[h.meter for h in register.households if h.dma in set(group)]
             for group in self._groups])
        self._per_dma_kinds = sorted({s.measurement for s in self.plan if s.per_dma})

    @property
    def parts(self) -> int:
        """Pieces one chunk of time is re-read in (:meth:`part_tasks`): the per-DMA
        selections group by group, then everything else."""
        return len(self._groups) + 1

    def detail_start(self, end: datetime) -> pd.Timestamp:
        """Where the raw detail window begins for a read ending at ``end`` (whole hour)."""
        return _hour_floor(require_aware(end, "end") - self.detail)

    def tasks(self, start: pd.Timestamp, end: pd.Timestamp,
              detail_end: pd.Timestamp | None = None) -> list[_Task]:
        """The queries of ``[start, end)`` (hours aligned), for :meth:`run`.

        ``detail_end``: the read the detail window belongs to ends there (default ``end``);
        a re-read of older hours reads them as that read did."""
        edge = self.detail_start((detail_end if detail_end is not None else end)
                                 .to_pydatetime())
        detail_start = min(max(start, edge), end)
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
        body = self.client.query_csv(task.query(), epoch="ms")
        wide = parse_csv(body, task.selection.measurement)
        if task.selection.meter_summary:
            return meter_rows(wide)
        return wide_to_long(wide, task.selection.measurement, task.selection.label_offset)

    def chunks(self, start: datetime, end: datetime) -> Iterator[pd.DataFrame]:
        """Long frames, one per query, for readings in ``[start, end)`` (hours aligned).

        Raises ``common.influx.InfluxUnavailable`` / ``InfluxRejected`` from the client.
        """
        low = _hour_floor(require_aware(start, "start"))
        high = require_aware(end, "end")
        tasks = self.tasks(low, high)
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            yield from pool.map(self._run, tasks)

    def read(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Every chunk of ``[start, end)`` as one time-sorted long frame."""
        return concat(list(self.chunks(start, end)))

    def part_tasks(self, start: pd.Timestamp, end: pd.Timestamp, part: int,
                   detail_end: pd.Timestamp) -> list[_Task]:
        """The queries of piece ``part`` (of :attr:`parts`) of ``[start, end)`` as a read
        ending at ``detail_end`` holds it: DMA group ``part``'s meters, or (the last part)
        everything else."""
        every = self.tasks(start, end, detail_end)
        if part < len(self._groups):
            return [t for t in every if t.selection.per_dma and t.dmas == self._groups[part]]
        return [t for t in every if not t.selection.per_dma]

    def run(self, tasks: Sequence[_Task]) -> list[pd.DataFrame]:
        """Each task's long frame, in order; ``parallel`` queries at a time."""
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(self._run, tasks))

    def part_rows(self, frame: pd.DataFrame, part: int) -> np.ndarray:
        """Which rows of a long frame piece ``part`` reads (any time)."""
        per_dma = frame["kind"].isin(self._per_dma_kinds).to_numpy()
        if part == len(self._groups):
            return ~per_dma
        devices = self._group_devices[part]
        if devices is None:
            return per_dma
        return per_dma & frame["device"].isin(devices).to_numpy()


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


SNAPSHOT_VERSION = 1


class SnapshotError(ValueError):
    """A readings snapshot that cannot be used (unreadable, another format or plan)."""


def snapshot_arrays(frame: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A long frame and its metadata as the plain arrays of a snapshot file.

    Times as epoch nanoseconds, device/kind/field as codes plus their categories (text
    arrays), values as floats, ``meta`` as JSON bytes: no pickles, so loading runs no code.
    """
    arrays: dict[str, np.ndarray] = {
        "time": frame["time"].dt.as_unit("ns").array.asi8,
        "value": frame["value"].to_numpy(dtype=float),
        "meta": np.frombuffer(json.dumps(dict(meta) | {"rows": len(frame)}).encode(),
                              dtype=np.uint8),
    }
    for name in ("device", "kind", "field"):
        column = frame[name]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(str).astype("category")
        arrays[f"{name}_codes"] = column.cat.codes.to_numpy()
        arrays[f"{name}_categories"] = np.asarray(column.cat.categories.astype(str),
                                                  dtype=str)
    return arrays


def write_snapshot(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (uncompressed ``.npz``) via a temporary file and a rename,
    so a crash leaves the previous snapshot or none, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        np.savez(out, allow_pickle=False, **arrays)
    os.replace(partial, path)


def load_snapshot(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A snapshot's long frame and metadata. Raises SnapshotError when it cannot be used."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            version = meta.get("version") if isinstance(meta, dict) else None
            if version != SNAPSHOT_VERSION:
                raise SnapshotError(f"format {version}, this worker reads {SNAPSHOT_VERSION}")
            columns: dict[str, Any] = {
                "time": pd.to_datetime(data["time"].astype(np.int64, copy=False), unit="ns",
                                       utc=True)}
            for name in ("device", "kind", "field"):
                columns[name] = pd.Categorical.from_codes(
                    data[f"{name}_codes"], categories=pd.Index(data[f"{name}_categories"]))
            columns["value"] = data["value"].astype(float, copy=False)
    except SnapshotError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"unreadable: {exc}") from exc
    frame = pd.DataFrame(columns)
    if len(frame) != meta.get("rows"):
        raise SnapshotError(f"{len(frame)} rows, its metadata says {meta.get('rows')}")
    if not frame["time"].is_monotonic_increasing:
        raise SnapshotError("rows not in time order")
    return frame, meta


class ReadingCache:
    """The worker's history in memory: the newest hours each pass, the rest re-read slowly.

    :meth:`refresh` reads everything in ``lookback`` on the first call and when time goes
    backwards; otherwise only from ``reread`` before the previous read's end (readings that
    arrived a little late), replacing the cached rows from there on. Readings replayed later
    than that (a gateway's outbox after a long outage) are caught by the *rolling re-read*:
    each refresh also re-reads the next few pieces of the older history (a UTC day's meters
    of one DMA group, or its other readings: :meth:`InfluxSource.part_tasks`), oldest first,
    as many as keep the whole lookback re-read once every ``reload`` (at most a sixteenth of
    it per refresh), so no pass has to read the whole lookback again. Pump, tank and
    analyser rows that leave the detail window are coarsened as the history queries would
    have returned them. The cached frame is kept in time order, so a refresh slices it and
    appends the new rows without sorting it again.

    ``snapshot``: a file the cache is saved to (:meth:`save`, in a background thread) and
    restored from on the first refresh, so a restarted worker reads only what is newer than
    the snapshot (plus ``reread``) instead of the whole lookback; the rolling re-read goes on
    where it stood. A snapshot that is unreadable or was written for another lookback,
    detail window or plan is ignored (logged) and the lookback is read in full.
    """

    def __init__(self, source: InfluxSource, *, lookback: timedelta, reread: timedelta,
                 reload: timedelta, snapshot: Path | None = None) -> None:
        self.source = source
        self.lookback = pd.Timedelta(lookback)
        self.reread = pd.Timedelta(reread)
        self.reload = pd.Timedelta(reload)
        self.snapshot = snapshot
        self._aggregates = history_aggregates(source.plan)
        self._frame: pd.DataFrame | None = None
        self._read_until: pd.Timestamp | None = None
        #: cached rows before this are hourly aggregates already (see :func:`coarsen`)
        self._coarse_before: pd.Timestamp | None = None
        #: the rolling re-read: the next (UTC day, part) to re-read, and pieces owed
        self._cursor: tuple[pd.Timestamp, int] | None = None
        self._owed = 0.0
        self._restore_tried = snapshot is None
        self._writer: threading.Thread | None = None
        #: what the last refresh did: "full", "incremental" or "restored" (incremental
        #: from a snapshot)
        self.last_refresh = ""
        #: pieces of older history the last refresh re-read (the rolling re-read)
        self.last_reread = 0
        #: seconds each finished snapshot write took (background thread)
        self.snapshot_writes: list[float] = []

    @property
    def frame(self) -> pd.DataFrame:
        return self._frame if self._frame is not None else empty_frame()

    def _fingerprint(self) -> dict[str, Any]:
        """What must match for a snapshot to stand in for a read: lookback, detail, plan."""
        plan = [[s.measurement, list(s.fields), dict(s.aggregates), s.label_offset.value,
                 s.where, s.latest, s.span, s.meter_summary] for s in self.source.plan]
        return {"version": SNAPSHOT_VERSION, "lookback_ns": self.lookback.value,
                "detail_ns": self.source.detail.value, "plan": plan,
                "parts": self.source.parts}

    def refresh(self, end: datetime) -> pd.DataFrame:
        """The long readings in ``[end - lookback, end)``, reading InfluxDB as needed."""
        stop = require_aware(end, "end")
        start = _hour_floor(stop - self.lookback)
        detail_start = max(start, self.source.detail_start(stop.to_pydatetime()))
        restored = self._restore() if not self._restore_tried else False
        self.last_reread = 0
        if (self._frame is None or self._read_until is None or stop < self._read_until
                or self._read_until <= start):
            frame = self.source.read(start.to_pydatetime(), stop.to_pydatetime())
            self._cursor, self._owed = None, 0.0
            self.last_refresh = "full"
        else:
            since = max(start, _hour_floor(self._read_until - self.reread))
            pieces = self._next_pieces(start, since, stop - self._read_until)
            # One batch of queries: the older pieces first (one long query each), so they
            # run beside the many short ones of the newest hours.
            piece_tasks = [task for low, high, part in pieces
                           for task in self.source.part_tasks(low, high, part, stop)]
            results = self.source.run(piece_tasks + self.source.tasks(since, stop))
            reread = concat(results[:len(piece_tasks)])
            fresh = concat(results[len(piece_tasks):])
            frame = self._assemble(self._frame, start, since, detail_start, pieces, reread,
                                   fresh)
            self.last_refresh = "restored" if restored else "incremental"
        self._frame = frame
        self._read_until = stop
        self._coarse_before = detail_start
        log.info("readings: %s refresh, %d older pieces re-read, %d rows in memory",
                 self.last_refresh, self.last_reread, len(frame))
        return frame

    def _next_pieces(self, start: pd.Timestamp, since: pd.Timestamp,
                     elapsed: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
        """The rolling re-read's pieces owed for ``elapsed`` (class docs), oldest first, as
        ``(start, end, part)``; moves the cursor past them."""
        parts = self.source.parts
        first_day = _floor(start, DAY)
        total = parts * max(1, math.ceil((since - first_day) / DAY))
        self._owed = min(self._owed + total * (elapsed / self.reload), float(total))
        count = min(int(self._owed), max(1, math.ceil(total / 16)))
        day, part = self._cursor if self._cursor is not None else (first_day, 0)
        pieces: list[tuple[pd.Timestamp, pd.Timestamp, int]] = []
        while len(pieces) < count:
            if day < first_day:
                day, part = first_day, 0
            low, high = max(day, start), min(day + DAY, since)
            if low >= high:  # reached the hours read afresh: start over next time
                day, part = first_day, 0
                break
            pieces.append((low, high, part))
            day, part = (day, part + 1) if part + 1 < parts else (day + DAY, 0)
        self._cursor = (day, part)
        self._owed -= len(pieces)
        self.last_reread = len(pieces)
        return pieces

    def _assemble(self, frame: pd.DataFrame, start: pd.Timestamp, since: pd.Timestamp,
                  detail_start: pd.Timestamp,
                  pieces: Sequence[tuple[pd.Timestamp, pd.Timestamp, int]],
                  reread: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
        """The cache after an incremental read, copied once and sorted only where it changed.

        Time segments of the cached frame: before ``start`` dropped; rows older than the
        last refresh's detail window hourly already; those that left the detail window
        since coarsened (:func:`coarsen`); the re-read pieces' rows replaced by ``reread``;
        from ``since`` on, ``fresh``.
        """
        coarse = min(max(self._coarse_before or start, start), since)
        aging = min(max(detail_start, coarse), since)
        low = min((p[0] for p in pieces), default=since)
        high = max((p[1] for p in pieces), default=since)
        bounds = sorted({start, coarse, aging, since, low, high})
        times = frame["time"]
        segments = []
        for begin, end in zip(bounds, bounds[1:], strict=False):
            first, last = (int(times.searchsorted(m, side="left")) for m in (begin, end))
            segment = frame.iloc[first:last]
            replaced = low <= begin and end <= high
            if replaced:
                when = segment["time"]
                drop = np.zeros(len(segment), dtype=bool)
                for piece_low, piece_high, part in pieces:
                    drop |= (((when >= piece_low) & (when < piece_high)).to_numpy()
                             & self.source.part_rows(segment, part))
                segment = segment[~drop]
            if coarse <= begin and end <= aging:
                segment = coarsen(segment, detail_start, self._aggregates)
            if replaced:
                new_first, new_last = (int(reread["time"].searchsorted(m, side="left"))
                                       for m in (begin, end))
                segment = concat([segment, reread.iloc[new_first:new_last]])
            segments.append(segment)
        return concat([*segments, fresh], in_order=True)

    def _restore(self) -> bool:
        """Load the snapshot, if there is a usable one (first refresh only)."""
        self._restore_tried = True
        if self.snapshot is None or not self.snapshot.exists():
            return False
        try:
            frame, meta = load_snapshot(self.snapshot)
            expected = self._fingerprint()
            for key, value in expected.items():
                if meta.get(key) != value:
                    raise SnapshotError(f"written with another {key.removesuffix('_ns')}")
            read_until, coarse_before = (pd.Timestamp(meta[key])
                                         for key in ("read_until", "coarse_before"))
            cursor = meta.get("cursor")
            owed = float(meta.get("owed", 0.0))
        except (SnapshotError, KeyError, ValueError, TypeError) as exc:
            log.warning("readings snapshot %s not used (%s): reading the whole lookback",
                        self.snapshot, exc)
            return False
        self._frame = frame
        self._read_until, self._coarse_before = read_until, coarse_before
        self._cursor = (pd.Timestamp(cursor[0]), int(cursor[1])) if cursor else None
        self._owed = owed
        log.info("readings: restored %d rows read until %s from %s", len(frame),
                 read_until.isoformat(), self.snapshot)
        return True

    def save(self) -> None:
        """Write the cache to ``snapshot`` in a background thread (after an earlier write has
        finished). No-op without a snapshot file or before the first refresh."""
        if (self.snapshot is None or self._frame is None or self._read_until is None
                or self._coarse_before is None):
            return
        self.wait()
        cursor = ([self._cursor[0].isoformat(), self._cursor[1]]
                  if self._cursor is not None else None)
        meta = self._fingerprint() | {
            "read_until": self._read_until.isoformat(),
            "coarse_before": self._coarse_before.isoformat(), "cursor": cursor,
            "owed": self._owed}
        arrays = snapshot_arrays(self._frame, meta)
        path = self.snapshot

        def write() -> None:
            started = time.perf_counter()
            try:
                write_snapshot(path, arrays)
            except OSError as exc:
                log.warning("readings snapshot %s not written: %s", path, exc)
                return
            self.snapshot_writes.append(time.perf_counter() - started)

        self._writer = threading.Thread(target=write, name="readings-snapshot", daemon=True)
        self._writer.start()

    def wait(self) -> None:
        """Until the snapshot write in progress (if any) has finished."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None


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
