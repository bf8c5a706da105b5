"""``analysis.pipeline.analyse()`` alone at county scale, without InfluxDB.

Run: ``.venv/bin/python benchmarks/analyse_cpu.py [--villages 20 200] [--days 15]
[--repeat 1] [--stages] [--back-hours 0] [--cache-dir var/analyse-cpu] [--save FILE]
[--compare FILE] [--give-back-memory]``. Method and recorded results: benchmarks/README.md.

Per scale (``simulator.county.build_county(seed, villages)``, ~300 meters and one DMA per
village, the default incident scenario) the simulator engine is stepped for ``--days`` and
its device states are recorded as the frame the worker's ``ReadingCache`` holds after a
cold read at the end ``T`` (``analysis.source`` module docs): meter ``volume_m3`` hourly;
meter states only for readings with the valve not open, a low battery or tamper, plus
each meter's latest reading per UTC day; every DMA inflow point; pump, tank and analyser
points raw over the last 72 h and as hourly aggregates before (``source.coarsen`` with the
default plan's aggregates); device, kind and field categorical (``source.concat``). The
usual 0.5% of readings are lost. The frame is pickled under ``--cache-dir`` (a later run
loads it in seconds), then ``analyse(frame, register, AnalysisParams(), T)`` is timed. The
process keeps the memory a pass frees, as the worker does by default
(``analysis.memory.keep_freed_memory``); ``--give-back-memory`` leaves the C library's
default (freed blocks go back to the kernel and are faulted in afresh).

Printed per scale: rows, wall and CPU seconds of ``analyse()`` (best of ``--repeat``),
peak resident memory of the process, findings per kind; with ``--stages``, seconds per
pipeline stage (the functions ``analyse`` calls, wrapped while it runs). The baseline is
in the same run: full scale against 1/10 (the growth column). ``--save`` writes the
findings (kind, subject, severity, evidence, start) and the KPI frames of every scale as
JSON; ``--compare`` checks a run against such a file (floats within 1e-9 relative), so an
optimisation can show it changed nothing. Target (issue 4, with the InfluxDB read of
``benchmarks/analysis_scale.py``): ``analyse()`` at full scale <= 20 s.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import pickle
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _wire  # noqa: E402
from _revision import code_revision  # noqa: E402

from analysis import devices, leaks, pipeline, quality, shortage  # noqa: E402
from analysis.memory import keep_freed_memory  # noqa: E402
from analysis.params import AnalysisParams  # noqa: E402
from analysis.source import coarsen, concat, default_plan, history_aggregates  # noqa: E402
from common.register import County  # noqa: E402
from common.schema import FIELDS  # noqa: E402
from simulator.county import build_county  # noqa: E402
from simulator.engine import CountySimulation, DeviceStates  # noqa: E402
from simulator.incidents import default_scenario  # noqa: E402
from simulator.messages import Intervals  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 6, 1, tzinfo=UTC)  # as benchmarks/analysis_scale.py
SEED = 20260601
DETAIL = timedelta(hours=72)  # InfluxSource's default raw window for pumps, tanks, analysers
MISSING_RATE = 0.005
TARGET_S = 20.0
#: bumped when the recorded frame changes (2: no meter status word, as the worker reads)
INPUT_VERSION = 2
MB = 1024 * 1024
#: meter state fields the worker reads (analysis.source: the status word is not read)
_STATES = ("valve", "battery_low", "tamper", "balance_yuan")

#: (module, function) pairs timed with ``--stages``; a name the code no longer has is skipped
STAGES: list[tuple[Any, str]] = [
    (pipeline, "clean"), (pipeline, "series"), (pipeline, "wide"), (pipeline, "select"),
    (leaks, "continuous_volumes"), (leaks, "hourly_use"), (leaks, "dma_hourly"),
    (leaks, "night_minimum"), (leaks, "detect_network_leaks"),
    (leaks, "detect_customer_leaks"), (leaks, "dma_kpis"), (leaks, "detect_water_balance"),
    (shortage, "detect_shortages"), (quality, "detect_quality"),
    (devices, "detect_silent"), (devices, "detect_meter_status"), (devices, "detect_pumps"),
    (devices, "detect_reverse_flow"),
]


# --------------------------------------------------------------------------- the input


class WorkerFrameRecorder:
    """Device states -> the long rows a cold ``ReadingCache`` read holds (module docs).

    Meters are recorded here (hourly volumes, abnormal and daily-latest states); the other
    kinds as raw points at the wire cadence, coarsened once at the end.
    """

    def __init__(self, county: County, seed: int) -> None:
        self.county = county
        self.intervals = Intervals()
        self.rng = np.random.default_rng([seed, 0xA11A])
        self.meters = np.array([h.meter for h in county.households], dtype=object)
        n = len(self.meters)
        self.volumes: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.states: list[tuple[int, np.ndarray, np.ndarray]] = []  # time, meters, 5 columns
        self.day: int | None = None
        self.last_time = np.full(n, -1, dtype=np.int64)  # today's latest reading, per meter
        self.last_states = np.zeros((n, len(_STATES)))
        self.last_abnormal = np.zeros(n, dtype=bool)
        self.other: list[tuple[int, np.ndarray, int, np.ndarray]] = []  # time, ids, pair, values
        by_kind = {"pump": [w.id for w in county.wells], "tank": [t.id for t in county.tanks],
                   "dma_inflow": [d.inflow_meter for d in county.dmas],
                   "quality": [a.id for a in county.analysers]}
        self.device_ids = [d for ids in by_kind.values() for d in ids]
        first = np.cumsum([0] + [len(ids) for ids in by_kind.values()])
        self.codes = {kind: np.arange(first[i], first[i + 1])
                      for i, kind in enumerate(by_kind)}
        self.pairs = [(kind, name) for kind in by_kind for name in FIELDS[kind]]
        self.pair_code = {pair: i for i, pair in enumerate(self.pairs)}
        self.analyser_groups = _wire.analyser_groups(county)

    def _present(self, count: int) -> np.ndarray:
        return self.rng.random(count) >= MISSING_RATE

    def add(self, states: DeviceStates) -> None:
        moment, every = states.time, self.intervals
        stamp = int(pd.Timestamp(moment).value)
        if _wire.due(moment, every.pump_min):
            self._points(stamp, "pump", _wire.pump_columns(states))
        if _wire.due(moment, every.tank_min):
            self._points(stamp, "tank", _wire.tank_columns(states))
        if _wire.due(moment, every.inflow_min):
            self._points(stamp, "dma_inflow", _wire.inflow_columns(states))
        if _wire.due(moment, every.quality_min) and self.county.analysers:
            self._quality(stamp, states)
        if _wire.due(moment, every.meter_min):
            self._meters(stamp, states)

    def _points(self, stamp: int, kind: str, columns: dict[str, np.ndarray],
                rows: np.ndarray | None = None) -> None:
        """One reading per present device of ``kind`` (``rows`` of it), a row per field."""
        ids = self.codes[kind] if rows is None else self.codes[kind][rows]
        present = self._present(len(ids))
        kept = ids[present]
        for name, values in columns.items():
            values = np.asarray(values, dtype=float)
            self.other.append((stamp, kept, self.pair_code[(kind, name)],
                               (values if rows is None else values[rows])[present]))

    def _quality(self, stamp: int, states: DeviceStates) -> None:
        arrays = _wire.quality_columns(states)
        for parameters, rows in self.analyser_groups.items():
            self._points(stamp, "quality", {p: arrays[p] for p in parameters}, rows)

    def _meters(self, stamp: int, states: DeviceStates) -> None:
        day = stamp // (86_400 * 10**9)
        if self.day is not None and day != self.day:
            self._flush_latest()
        self.day = day
        present = np.flatnonzero(self._present(len(self.meters)) & ~states.meter_offline)
        self.volumes.append((stamp, present, states.meter_volume_m3.round(2)[present]))
        closed = ~states.valve_open
        columns = np.column_stack([closed, states.battery_low, states.tamper,
                                   states.balance_yuan.round(2)]).astype(float)[present]
        abnormal = (closed | states.battery_low | states.tamper)[present]
        self.states.append((stamp, present[abnormal], columns[abnormal]))
        self.last_time[present] = stamp
        self.last_states[present] = columns
        self.last_abnormal[present] = abnormal

    def _flush_latest(self) -> None:
        """Each meter's latest reading of the day (a reading also abnormal counts once)."""
        keep = np.flatnonzero((self.last_time >= 0) & ~self.last_abnormal)
        for stamp in np.unique(self.last_time[keep]):
            rows = keep[self.last_time[keep] == stamp]
            self.states.append((int(stamp), rows, self.last_states[rows]))
        self.last_time[:] = -1

    def frame(self, end: pd.Timestamp) -> pd.DataFrame:
        """The cached frame of a cold read of ``[end - days, end)``."""
        self._flush_latest()
        volume = _long(self.volumes, self.meters, ("volume_m3",))
        states = _long(self.states, self.meters, _STATES)
        counts = np.array([ids.size for _, ids, _, _ in self.other])
        pairs = np.repeat(np.array([p for _, _, p, _ in self.other]), counts)
        other = pd.DataFrame({
            "time": pd.to_datetime(np.repeat(np.array([t for t, _, _, _ in self.other],
                                                      dtype=np.int64), counts),
                                   unit="ns", utc=True),
            "device": pd.Categorical.from_codes(np.concatenate([i for _, i, _, _ in self.other]),
                                                categories=self.device_ids),
            "kind": pd.Categorical(np.array([k for k, _ in self.pairs], dtype=object)[pairs]),
            "field": pd.Categorical(np.array([n for _, n in self.pairs], dtype=object)[pairs]),
            "value": np.concatenate([v for _, _, _, v in self.other])})
        frame = concat([volume, states, other])
        frame = frame[frame["time"] < end].reset_index(drop=True)
        detail_start = (end - pd.Timedelta(DETAIL)).floor("h")
        return coarsen(frame, detail_start, history_aggregates(default_plan()))


def _long(chunks: list[tuple[int, np.ndarray, np.ndarray]], meters: np.ndarray,
          fields: tuple[str, ...]) -> pd.DataFrame:
    """Meter chunks (time, meter rows, values per field) as long rows, categorical."""
    counts = np.array([rows.size for _, rows, _ in chunks])
    times = np.repeat(np.array([t for t, _, _ in chunks], dtype=np.int64), counts)
    rows = np.concatenate([r for _, r, _ in chunks])
    width = len(fields)
    values = np.concatenate([v.reshape(len(r), width) for _, r, v in chunks])
    device = pd.Categorical.from_codes(np.repeat(rows, width),
                                       categories=pd.Index(meters, dtype=object))
    return pd.DataFrame({
        "time": pd.to_datetime(np.repeat(times, width), unit="ns", utc=True),
        "device": device,
        "kind": pd.Categorical.from_codes(np.zeros(rows.size * width, dtype=np.int8),
                                          categories=["meter"]),
        "field": pd.Categorical.from_codes(np.tile(np.arange(width, dtype=np.int8), rows.size),
                                           categories=list(fields)),
        "value": values.ravel()})


def build_input(villages: int, days: int, seed: int) -> tuple[County, pd.DataFrame, datetime]:
    county = build_county(seed, villages)
    end = START + timedelta(days=days)
    incidents = default_scenario(county, START, days, seed)
    simulation = CountySimulation(county, incidents, START, seed)
    recorder = WorkerFrameRecorder(county, seed)
    for states in simulation.states(end):
        recorder.add(states)
    return county, recorder.frame(pd.Timestamp(end)), end


def load_input(villages: int, days: int, seed: int,
               cache_dir: Path) -> tuple[County, pd.DataFrame, datetime, float]:
    """The scale's input from the cache, or simulated and cached; (..., seconds to build)."""
    path = cache_dir / f"input{INPUT_VERSION}-v{villages}-d{days}-s{seed}.pickle"
    began = time.perf_counter()
    if path.exists():
        with path.open("rb") as handle:
            county, frame, end = pickle.load(handle)
        return county, frame, end, time.perf_counter() - began
    county, frame, end = build_input(villages, days, seed)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump((county, frame, end), handle, protocol=pickle.HIGHEST_PROTOCOL)
    return county, frame, end, time.perf_counter() - began


# --------------------------------------------------------------------------- timing


class StageClock:
    """Wall seconds per wrapped function while :meth:`wrapped` is active (calls nest)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()  # float seconds

    def _wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - began  # type: ignore[assignment]
        return timed

    @contextlib.contextmanager
    def wrapped(self) -> Iterator[None]:
        originals = [(m, n, getattr(m, n)) for m, n in STAGES if hasattr(m, n)]
        for module, name, function in originals:
            setattr(module, name, self._wrap(f"{module.__name__.split('.')[-1]}.{name}",
                                             function))
        try:
            yield
        finally:
            for module, name, function in originals:
                setattr(module, name, function)


def timed_pass(frame: pd.DataFrame, county: County, end: datetime, repeat: int,
               stages: bool) -> tuple[pipeline.Analysis, float, float, Counter[str]]:
    """Best wall and CPU seconds of ``repeat`` passes; stage seconds of the last."""
    best_wall = best_cpu = math.inf
    clock = StageClock()
    result = None
    for _ in range(repeat):
        clock.seconds.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        with clock.wrapped() if stages else contextlib.nullcontext():
            result = pipeline.analyse(frame, county, AnalysisParams(), end)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    assert result is not None
    return result, best_wall, best_cpu, clock.seconds


# --------------------------------------------------------------------------- reference


def summary(result: pipeline.Analysis) -> dict[str, Any]:
    """What a pass decided, as JSON: findings sorted by key, KPI frames as records."""
    findings: list[dict[str, Any]] = [
        {"key": f.key, "severity": str(f.severity), "title": f.title,
         "started_at": f.started_at.isoformat(), "evidence": f.evidence}
        for f in sorted(result.findings, key=lambda f: f.key)]

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return json.loads(frame.to_json(orient="records", date_format="iso", double_precision=15))

    return {"findings": findings,
            "evaluated": {str(k): sorted(v) for k, v in result.evaluated.items()},
            "dma_days": records(result.dma_days), "supply": records(result.supply),
            "meter_anomalies": len(result.meter_anomalies)}


def differences(old: Any, new: Any, where: str = "") -> Iterator[str]:
    """Where two summaries differ (floats within 1e-9 relative count as equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key not in old or key not in new:
                yield f"{where}/{key}: only in {'new' if key in new else 'old'}"
            else:
                yield from differences(old[key], new[key], f"{where}/{key}")
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            yield f"{where}: {len(old)} items, now {len(new)}"
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            yield from differences(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and isinstance(new, float):
        if not (math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12)
                or (math.isnan(old) and math.isnan(new))):
            yield f"{where}: {old!r} -> {new!r}"
    elif old != new:
        yield f"{where}: {old!r} -> {new!r}"


# --------------------------------------------------------------------------- main


def out(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - CLI output


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--villages", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--days", type=int, default=15, help="simulated days (the lookback)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--back-hours", type=float, default=0.0,
                        help="pass this long before the end, on the rows up to then "
                             "(mid-run more incidents are active)")
    parser.add_argument("--repeat", type=int, default=1, help="passes per scale (best kept)")
    parser.add_argument("--stages", action="store_true", help="seconds per pipeline stage")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "var" / "analyse-cpu")
    parser.add_argument("--save", type=Path, help="write the passes' findings and KPIs")
    parser.add_argument("--compare", type=Path, help="check against a --save file")
    parser.add_argument("--give-back-memory", action="store_true",
                        help="do not keep freed memory for the next pass (the worker does)")
    args = parser.parse_args(argv)
    kept = not args.give_back_memory and keep_freed_memory()
    out(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"code {code_revision(REPO, 'analysis', 'common')}, freed memory "
        f"{'kept' if kept else 'given back'}")
    saved: dict[str, Any] = {}
    reference = json.loads(args.compare.read_text()) if args.compare else None
    rows: list[tuple[int, int, int, float, float, int]] = []
    failures = 0
    for villages in args.villages:
        county, frame, end, built = load_input(villages, args.days, args.seed, args.cache_dir)
        if args.back_hours:
            end -= timedelta(hours=args.back_hours)
            frame = frame[frame["time"] <= pd.Timestamp(end)].reset_index(drop=True)
        out(f"{villages} villages: {len(frame):,} rows, {len(county.households):,} meters, "
              f"input in {built:.1f} s")
        result, wall, cpu, stage_s = timed_pass(frame, county, end, args.repeat, args.stages)
        kinds = Counter(str(f.kind) for f in result.findings)
        out(f"  analyse(): {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"peak RSS {peak_rss_mb():,.0f} MB; findings {dict(sorted(kinds.items()))}")
        for name, seconds in stage_s.most_common():
            out(f"    {name:<36} {seconds:7.2f} s")
        rows.append((villages, len(county.households), len(frame), wall, cpu,
                     len(result.findings)))
        saved[str(villages)] = summary(result)
        if reference is not None:
            if str(villages) not in reference:
                out(f"  compare: no reference for {villages} villages")
                continue
            diff = list(differences(reference[str(villages)], saved[str(villages)]))
            failures += bool(diff)
            verdict = "same findings and KPIs" if not diff else f"{len(diff)} differ"
            out(f"  compare: {verdict}")
            for line in diff[:20]:
                out(f"    {line}")
        del frame, result
    out("")
    out(f"{'villages':>8} {'meters':>7} {'rows':>11} {'wall s':>7} {'CPU s':>7} "
          f"{'findings':>8} {'growth':>7}")
    for villages, meters, n_rows, wall, cpu, found in rows:
        growth = f"{cpu / rows[0][4]:.1f}x" if rows[0][4] > 0 else "-"
        out(f"{villages:>8} {meters:>7} {n_rows:>11,} {wall:>7.1f} {cpu:>7.1f} {found:>8} "
              f"{growth:>7}")
    if args.save:
        args.save.write_text(json.dumps(saved, indent=1, default=str))
    largest = rows[-1]
    passed = largest[3] <= TARGET_S
    out(f"target: analyse() <= {TARGET_S:.0f} s at {largest[0]} villages: "
          f"{'PASS' if passed else 'FAIL'} ({largest[3]:.1f} s)")
    return 0 if passed and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
