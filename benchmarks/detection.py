"""Detection scoring: the simulator's scripted incidents against the analysis, and a baseline.

Run: ``.venv/bin/python benchmarks/detection.py [--seeds 3] [--villages 12] [--households 30]
[--days 19] [--every 8] [--clean-seeds 1] [--jobs N] [--scenario FILE] [--json out.json]``.

For every seed: build the county, place the graded incidents of ``--scenario`` on it
(``detection_scenarios/graded.yaml``: leaks of 3, 5, 10 and 20% of a DMA's mean inflow,
bursts, customer-side leaks, a summer surge that drains a tank, a chlorinator failure, a
turbidity event, a meter offline, a low battery, a valve closed at zero balance, tamper, a
pump fault), step the simulator and record the readings directly from its device states in
the long format (time, device, kind, field, value; the wire cadence and losses, no broker or
database), then replay detection as a worker would: ``analysis.pipeline.analyse`` every
``--every`` hours (05:00, 13:00, 21:00 local at the default 8) on the last
``--lookback-days`` of readings, plus the passes a worker running every few minutes would
have made and that grid lacks: hourly through incidents shorter than 12 h, and one at the
first reading below the chlorine limit (``extra_passes``). Passes are independent, so
``--jobs`` processes share them. The first ``--clean-seeds`` counties are also replayed
without incidents, for false alarms. Time to detect includes the pass spacing.

Scored per incident label against the ground truth (the incidents' measured ``effect``):
detection rate, time to detect (from the effect's ``started_at``; from the first reading
below the limit for a chlorinator failure), and false alarms per 100 DMA-days (alarm
episodes that match no incident, counted over both runs). The baseline is a plain
night-flow threshold: a DMA's minimum inflow 02:00-04:00 local above ``--baseline-threshold``
of its mean inflow over the previous days raises a leak alarm.

Targets (issue 4): bursts and leaks >= 5% of inflow found within 24 h, customer-side leaks
within 48 h, <= 1 false alarm per 100 DMA-days, shortages flagged >= 7 days before the tank
runs dry, a chlorine breach flagged at the first reading below the limit: the replay adds a
pass at that reading (as a worker running at the 10-minute quality cadence would have) and
that pass must raise a finding starting no later than the reading. Exit status 0: every
target passed; 1: some failed; 2: the analysis could not be imported (the baseline is still
scored and printed).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _wire, also when loaded by path

import _wire  # noqa: E402

from common.register import County  # noqa: E402
from common.schema import FIELDS  # noqa: E402
from simulator import physics  # noqa: E402
from simulator.county import BASE_LPCD, build_county  # noqa: E402
from simulator.engine import (  # noqa: E402
    OUTLET_LIMIT_MGL,
    STEP,
    TAP_LIMIT_MGL,
    CountySimulation,
    DeviceStates,
)
from simulator.incidents import Incident, IncidentKind  # noqa: E402
from simulator.messages import Intervals  # noqa: E402

SCENARIOS = Path(__file__).resolve().parent / "detection_scenarios"
#: local midnight, 1 June (UTC+8): early summer, when demand rises and wells decline
START = datetime(2026, 5, 31, 16, 0, tzinfo=UTC)
#: after an incident ends, alarms about it are still about it for this long
GRACE = timedelta(hours=24)
#: a natural (prepaid) valve closure shorter than this may never show in hourly readings
MIN_NATURAL_CLOSURE = timedelta(hours=2)
NIGHT_HOURS = (2, 4)  # minimum night flow window, local time [start, end)
#: a surge raises demand to this share of the wells' capacity, but to at most this multiple
#: of normal demand (then the aquifer falls faster to make up the rest)
SURGE_DEMAND_SHARE = 0.85
SURGE_MAX_FACTOR = 2.5


# ---------------------------------------------------------------------------- scenarios


class IncidentTemplate(BaseModel):
    """One incident of a benchmark scenario, placed on a county by :func:`place_incidents`."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="row of the results table; graded sizes get their own")
    kind: IncidentKind
    village: int = Field(ge=1, description="n-th village (1-based, wraps round)")
    site: Literal["outlet", "tap"] | None = Field(
        default=None, description="count only villages with an analyser at this site")
    start: timedelta
    jitter: timedelta = timedelta(0)
    duration: timedelta | None = None
    magnitude: float = Field(default=0.0, ge=0.0)
    dry_after: timedelta | None = Field(default=None, description="demand_surge sizing")
    monitored: bool = False


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incidents: list[IncidentTemplate]


@dataclass
class Scripted:
    """An incident placed on one county, with the table row it is scored under."""

    label: str
    incident: Incident


def load_templates(path: Path) -> list[IncidentTemplate]:
    """Read a benchmark scenario (YAML or JSON, ``{"incidents": [...]}``)."""
    try:
        raw = yaml.safe_load(path.read_text())
        return ScenarioFile.model_validate(raw).incidents
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise SystemExit(f"{path}: not a benchmark scenario: {exc}") from exc


def _village_for(template: IncidentTemplate, county: County) -> str:
    if template.site is None:
        candidates = [v.id for v in county.villages]
    else:
        candidates = sorted({a.village for a in county.analysers if a.site == template.site})
        if not candidates:
            raise SystemExit(f"{template.label}: no village has an analyser at the "
                             f"{template.site}")
    return candidates[(template.village - 1) % len(candidates)]


def _target(template: IncidentTemplate, county: County, village: str,
             rng: np.random.Generator) -> str:
    kind = template.kind
    if kind in ("background_leak", "burst"):
        dma = next(d for d in county.dmas if d.village == village)
        return dma.branches[int(rng.integers(len(dma.branches)))].id
    if kind in ("demand_surge", "chlorinator_failure"):
        return village
    if kind == "turbidity_event":
        analysers = [a.id for a in county.analysers if a.village == village
                     and (template.site is None or a.site == template.site)]
        return analysers[0] if analysers else village
    if kind == "pump_fault":
        wells = [w.id for w in county.wells if w.village == village]
        return wells[int(rng.integers(len(wells)))]
    households = [h for h in county.households if h.village == village
                  and (h.monitored or not template.monitored)]
    households = households or [h for h in county.households if h.village == village]
    return households[int(rng.integers(len(households)))].id


def size_surge(county: County, village: str, start: datetime,
               dry_after: timedelta) -> tuple[float, float]:
    """A dry-summer surge for ``village``: (demand factor, aquifer decline in m/day).

    Demand (with the DMA's background leakage) rises to SURGE_DEMAND_SHARE of what the wells
    give in their allowed hours, and the rest level falls at a rate chosen so that the wells'
    capacity drops below demand and then the tank (about 80% full) empties roughly
    ``dry_after`` after ``start``: capacity, in m3/day, falls by allowed_h / drawdown per
    metre once a pump is limited by the water above its intake, so the deficit grows
    linearly and the tank lasts sqrt(2 V / (k r)) days after the crossing.
    """
    local = county_local(county, start)
    weight = physics.summer_weight(local)
    wells = [w for w in county.wells if w.village == village]
    the_village = next(v for v in county.villages if v.id == village)
    dma = next(d for d in county.dmas if d.village == village)
    tank = next(t for t in county.tanks if t.village == village)

    def capacity_m3d(decline_m: float) -> float:
        return sum(w.allowed_hours_per_day * min(w.rated_flow_m3h, max(
            0.0, (w.intake_depth_m - 2.0 - w.static_level_m - w.summer_decline_m * weight
                  - decline_m) / w.drawdown_m_per_m3h)) for w in wells)

    base_m3d = the_village.population * BASE_LPCD / 1000 * physics.seasonal_factor(local)
    leak_m3d = dma.background_leak_m3h * 24
    factor = float(np.clip((SURGE_DEMAND_SHARE * capacity_m3d(0.0) - leak_m3d) / base_m3d,
                           1.2, SURGE_MAX_FACTOR))
    demand_m3d = factor * base_m3d + leak_m3d
    low, high = 0.0, 500.0
    for _ in range(60):  # capacity falls with the decline: bisect for capacity == demand
        middle = (low + high) / 2
        low, high = (middle, high) if capacity_m3d(middle) > demand_m3d else (low, middle)
    crossing_m = max(low, 0.1)
    slope = sum(w.allowed_hours_per_day / w.drawdown_m_per_m3h for w in wells)
    drain = math.sqrt(2 * 0.8 * tank.capacity_m3 / slope)
    days = dry_after.total_seconds() / 86400
    root = (-drain + math.sqrt(drain * drain + 4 * crossing_m * days)) / (2 * crossing_m)
    return round(factor, 3), round(1 / root ** 2, 3)


def place_incidents(templates: Sequence[IncidentTemplate], county: County, start: datetime,
                    seed: int) -> list[Scripted]:
    """The scenario's incidents on this county: targets and start offsets drawn per seed."""
    rng = np.random.default_rng([seed, 0xDE7EC7])
    step_s = STEP.total_seconds()
    placed = []
    for template in templates:
        village = _village_for(template, county)
        jitter_s = float(rng.uniform(0, template.jitter.total_seconds())) \
            if template.jitter else 0.0
        begin = start + template.start + timedelta(seconds=round(jitter_s / step_s) * step_s)
        end = begin + template.duration if template.duration is not None else None
        magnitude, decline = template.magnitude, 0.0
        if template.kind == "demand_surge":
            magnitude, decline = size_surge(county, village, begin,
                                            template.dry_after or timedelta(days=12))
        incident = Incident(
            kind=template.kind, target=_target(template, county, village, rng), start=begin,
            end=end, magnitude=magnitude, aquifer_decline_m_per_day=decline,
            relative=template.kind in ("background_leak", "burst"))
        placed.append(Scripted(template.label, incident))
    return placed


def county_local(county: County, moment: datetime) -> datetime:
    """Naive local wall-clock time of a UTC-aware moment."""
    return moment.astimezone(UTC).replace(tzinfo=None) + timedelta(
        hours=county.utc_offset_hours)


# ---------------------------------------------------------------------------- readings


@dataclass
class ValveClosure:
    household: str
    closed_at: datetime
    reopened_at: datetime | None


class LongRecorder:
    """Device states -> the long readings format, at the wire cadence, with its losses.

    ``time`` (UTC), ``device`` (the id a gateway reports: meter address, well, tank, inflow
    meter, analyser), ``kind`` (measurement), ``field`` and ``value`` (float; booleans 0/1,
    valve 0 open / 1 closed), as ``common.schema.FIELDS`` and ``simulator.messages`` round
    them. Also keeps what the states show that no reading names: when valves closed.
    """

    def __init__(self, county: County, *, intervals: Intervals | None = None,
                 missing_rate: float = 0.005, seed: int = 0) -> None:
        self.county = county
        self.intervals = intervals or Intervals()
        self.missing_rate = missing_rate
        self.rng = np.random.default_rng([seed, 0x10C6])
        self.pairs: list[tuple[str, str]] = [(kind, name) for kind, fields in FIELDS.items()
                                             if kind in _RECORDED for name in fields]
        self._pair_ix = {pair: i for i, pair in enumerate(self.pairs)}
        self.devices: list[str] = []
        self._device_ix: dict[str, int] = {}
        self._wells = self._codes(w.id for w in county.wells)
        self._tanks = self._codes(t.id for t in county.tanks)
        self._inflows = self._codes(d.inflow_meter for d in county.dmas)
        self._meters = self._codes(h.meter for h in county.households)
        self._analysers = self._codes(a.id for a in county.analysers)
        self._analyser_groups = _wire.analyser_groups(county)
        self._chunks: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self._closed = np.zeros(len(county.households), dtype=bool)
        self._open_closures: dict[int, ValveClosure] = {}
        self.closures: list[ValveClosure] = []

    def _codes(self, ids: Iterable[str]) -> np.ndarray:
        """Index each device id into ``self.devices`` (adding the new ones)."""
        codes = []
        for device in ids:
            if device not in self._device_ix:
                self._device_ix[device] = len(self.devices)
                self.devices.append(device)
            codes.append(self._device_ix[device])
        return np.array(codes, dtype=np.int32)

    def _add(self, moment: datetime, kind: str, devices: np.ndarray,
             columns: dict[str, np.ndarray], present: np.ndarray) -> None:
        """One reading per present device, one row per field in ``columns``."""
        if not present.any():
            return
        kept = devices[present]
        names = list(columns)
        values = np.column_stack([np.asarray(columns[n], dtype=float)[present] for n in names])
        pair_codes = np.array([self._pair_ix[(kind, n)] for n in names], dtype=np.int16)
        self._chunks.append((int(pd.Timestamp(moment).value), np.repeat(kept, len(names)),
                             np.tile(pair_codes, kept.size), values.ravel()))

    def _present(self, count: int) -> np.ndarray:
        return self.rng.random(count) >= self.missing_rate

    def add(self, states: DeviceStates) -> None:
        """Record one simulator step (every step: valve closures are tracked per step)."""
        self._track_valves(states)
        moment, every = states.time, self.intervals
        if _wire.due(moment, every.pump_min):
            self._add(moment, "pump", self._wells, _wire.pump_columns(states),
                      self._present(self._wells.size))
        if _wire.due(moment, every.tank_min):
            self._add(moment, "tank", self._tanks, _wire.tank_columns(states),
                      self._present(self._tanks.size))
        if _wire.due(moment, every.inflow_min):
            self._add(moment, "dma_inflow", self._inflows, _wire.inflow_columns(states),
                      self._present(self._inflows.size))
        if _wire.due(moment, every.quality_min) and self.county.analysers:
            self._quality(moment, states)
        if _wire.due(moment, every.meter_min):
            self._add(moment, "meter", self._meters, {
                "volume_m3": states.meter_volume_m3.round(2),
                "balance_yuan": states.balance_yuan.round(2),
                "valve": ~states.valve_open, "battery_low": states.battery_low,
                "tamper": states.tamper,
                "status": ((~states.valve_open).astype(np.int64)
                           | (states.battery_low.astype(np.int64) << 2)
                           | (states.tamper.astype(np.int64) << 8)),
                "clock_offset_s": states.meter_clock_offset_s},
                self._present(self._meters.size) & ~states.meter_offline)

    def _quality(self, moment: datetime, states: DeviceStates) -> None:
        arrays = _wire.quality_columns(states)
        present = self._present(self._analysers.size)
        for parameters, index in self._analyser_groups.items():
            self._add(moment, "quality", self._analysers[index],
                      {name: arrays[name][index] for name in parameters}, present[index])

    def _track_valves(self, states: DeviceStates) -> None:
        closed = ~states.valve_open
        for h in np.flatnonzero(closed & ~self._closed):
            closure = ValveClosure(self.county.households[h].id, states.time, None)
            self._open_closures[int(h)] = closure
            self.closures.append(closure)
        for h in np.flatnonzero(~closed & self._closed):
            self._open_closures.pop(int(h)).reopened_at = states.time
        self._closed = closed

    def frame(self) -> pd.DataFrame:
        """Every recorded reading, time-ordered: the long format ``analyse`` takes."""
        if not self._chunks:
            return pd.DataFrame({"time": pd.to_datetime([], utc=True), "device": [],
                                 "kind": [], "field": [], "value": []})
        counts = np.array([chunk[1].size for chunk in self._chunks])
        times = np.repeat(np.array([chunk[0] for chunk in self._chunks], dtype=np.int64),
                          counts)
        devices = np.concatenate([chunk[1] for chunk in self._chunks])
        pairs = np.concatenate([chunk[2] for chunk in self._chunks])
        kinds = np.array([kind for kind, _ in self.pairs], dtype=object)
        names = np.array([name for _, name in self.pairs], dtype=object)
        return pd.DataFrame({
            "time": pd.to_datetime(times, unit="ns", utc=True),
            "device": np.array(self.devices, dtype=object)[devices],
            "kind": kinds[pairs], "field": names[pairs],
            "value": np.concatenate([chunk[3] for chunk in self._chunks]),
        })


_RECORDED = ("meter", "pump", "dma_inflow", "tank", "quality")


@dataclass
class SimulatedRun:
    seed: int
    county: County
    scripted: list[Scripted]
    readings: pd.DataFrame
    closures: list[ValveClosure]
    tank_dry_at: dict[str, datetime]
    start: datetime
    end: datetime
    simulate_s: float


def simulate(county: County, scripted: list[Scripted], seed: int, start: datetime,
             days: float, missing_rate: float = 0.005) -> SimulatedRun:
    """Step the county through ``days`` and record its readings in the long format."""
    began = time.perf_counter()
    end = start + timedelta(days=days)
    simulation = CountySimulation(county, [s.incident for s in scripted], start, seed)
    recorder = LongRecorder(county, missing_rate=missing_rate, seed=seed)
    for states in simulation.states(end):
        recorder.add(states)
    return SimulatedRun(seed, county, scripted, recorder.frame(), recorder.closures,
                        dict(simulation.tank_dry_at), start, end, time.perf_counter() - began)


# ---------------------------------------------------------------------------- alarms


@dataclass(frozen=True)
class Observation:
    """One finding as the scorer sees it: kind, subject and every id its place names."""

    kind: str
    subject: str
    ids: frozenset[str]
    started_at: datetime

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


@dataclass
class Episode:
    """An alarm from the pass that first raised it until the pass that no longer does."""

    kind: str
    subject: str
    ids: frozenset[str]
    started_at: datetime
    detected_at: datetime
    cleared_at: datetime | None = None
    explained_by: str | None = None


class EpisodeTracker:
    """Turns the findings of successive passes into alarm episodes (one open per key)."""

    def __init__(self) -> None:
        self.open: dict[str, Episode] = {}
        self.episodes: list[Episode] = []

    def update(self, now: datetime, observations: Iterable[Observation]) -> None:
        current = {o.key: o for o in observations}
        for key, episode in list(self.open.items()):
            if key not in current:
                episode.cleared_at = now
                del self.open[key]
        for key, observation in current.items():
            if key not in self.open:
                episode = Episode(observation.kind, observation.subject, observation.ids,
                                  observation.started_at, now)
                self.open[key] = episode
                self.episodes.append(episode)


Detector = Callable[[pd.DataFrame, datetime], list[Observation]]


def observe(finding: Any) -> Observation:
    """An ``analysis`` Finding (kind, subject, place, started_at) as an Observation."""
    kind = getattr(finding.kind, "value", finding.kind)
    place = finding.place.model_dump() if finding.place is not None else {}
    ids = {str(value) for name, value in place.items()
           if isinstance(value, str) and name != "township"}
    return Observation(str(kind), str(finding.subject), frozenset(ids | {finding.subject}),
                       finding.started_at)


def analysis_detector(county: County) -> Detector | None:
    """``analysis.pipeline.analyse`` with default parameters, or None if it cannot import."""
    try:
        from analysis.params import AnalysisParams
        from analysis.pipeline import analyse
    except ImportError:
        return None
    params = AnalysisParams()

    def detect(window: pd.DataFrame, now: datetime) -> list[Observation]:
        return [observe(f) for f in analyse(window, county, params, now).findings]

    return detect


class NightFlowBaseline:
    """The plain night-flow threshold: a DMA whose minimum inflow between 02:00 and 04:00
    local (m3/h, over the 15-minute readings) is above ``threshold`` x its mean inflow over
    the previous ``mean_days`` local days raises a leak alarm (kind ``night_flow``) once that
    night is over, and keeps it while the latest night stays above."""

    def __init__(self, county: County, readings: pd.DataFrame, threshold: float,
                 mean_days: int = 7) -> None:
        inflow = readings[(readings["kind"] == "dma_inflow")
                          & (readings["field"] == "flow_m3h")]
        dma_of = {d.inflow_meter: d.id for d in county.dmas}
        offset = pd.Timedelta(hours=county.utc_offset_hours)
        self._nights: dict[str, list[tuple[datetime, bool]]] = {}
        for meter, series in inflow.groupby("device"):
            flows = series.set_index("time")["value"]
            local = flows.index.tz_localize(None) + offset
            day = local.normalize()
            hour = local.hour
            daily_mean = flows.groupby(day).mean()
            night = flows[(hour >= NIGHT_HOURS[0]) & (hour < NIGHT_HOURS[1])]
            night_min = night.groupby(day[(hour >= NIGHT_HOURS[0])
                                          & (hour < NIGHT_HOURS[1])]).min()
            previous_mean = daily_mean.shift(1).rolling(mean_days, min_periods=1).mean()
            flagged = []
            for date, minimum in night_min.items():
                mean = previous_mean.get(date)
                if mean is None or not np.isfinite(mean):
                    continue
                over = (pd.Timestamp(date) + pd.Timedelta(hours=NIGHT_HOURS[1]) - offset)
                flagged.append((over.tz_localize(UTC).to_pydatetime(),
                                bool(minimum > threshold * mean)))
            self._nights[dma_of[str(meter)]] = flagged

    def __call__(self, window: pd.DataFrame, now: datetime) -> list[Observation]:
        found = []
        for dma, nights in self._nights.items():
            done = [(over, flag) for over, flag in nights if over <= now]
            if not done or not done[-1][1]:
                continue
            first = len(done) - 1
            while first > 0 and done[first - 1][1]:
                first -= 1
            found.append(Observation("night_flow", dma, frozenset({dma}), done[first][0]))
        return found


@dataclass
class Replay:
    episodes: list[Episode]
    passes: list[datetime]
    pass_s: list[float]


#: what the forked pass workers read: set by :func:`replay` before the pool forks
_SHARED: dict[str, Any] = {}


def _pass_at(now: datetime) -> tuple[list[Observation], float]:
    """One detection pass at ``now`` on the shared readings; (observations, seconds)."""
    readings: pd.DataFrame = _SHARED["readings"]
    times: np.ndarray = _SHARED["times"]
    lookback: timedelta = _SHARED["lookback"]
    low = int(np.searchsorted(times, pd.Timestamp(now - lookback).value, side="right"))
    high = int(np.searchsorted(times, pd.Timestamp(now).value, side="right"))
    began = time.perf_counter()
    observations = _SHARED["detector"](readings.iloc[low:high].reset_index(drop=True), now)
    return observations, time.perf_counter() - began


def replay(readings: pd.DataFrame, detector: Detector, passes: Sequence[datetime],
           lookback: timedelta, jobs: int = 1) -> Replay:
    """Run ``detector`` at every pass time on the readings of the ``lookback`` before it.

    Passes are independent (each sees only the readings up to its time), so ``jobs`` > 1
    runs them in forked processes; the episodes are then built in time order.
    """
    _SHARED.update(readings=readings, detector=detector, lookback=lookback,
                   times=readings["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
    try:
        if jobs > 1 and len(passes) > 1:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                results = pool.map(_pass_at, passes, chunksize=1)
        else:
            results = [_pass_at(now) for now in passes]
    finally:
        _SHARED.clear()
    tracker = EpisodeTracker()
    for now, (observations, _) in zip(passes, results, strict=True):
        tracker.update(now, observations)
    return Replay(tracker.episodes, list(passes), [seconds for _, seconds in results])


#: incidents shorter than this get hourly passes while they last (see extra_passes)
SHORT_INCIDENT = timedelta(hours=12)


def extra_passes(truths: Sequence[Truth], end: datetime) -> list[datetime]:
    """Passes a worker running every few minutes would have made and the coarse grid lacks.

    One at the first reading below the chlorine limit (only that pass can tell whether the
    breach was flagged at once), and hourly through every incident shorter than
    SHORT_INCIDENT and two hours after it (a 4-hour turbidity event can fall between two
    passes of an 8-hour grid). Every pass sees only readings up to its own time.
    """
    moments = [t.breach_reading_at for t in truths if t.breach_reading_at is not None]
    for truth in truths:
        if truth.kind == "natural_valve_closed" or truth.end is None \
                or truth.end - truth.start > SHORT_INCIDENT:
            continue
        moment = truth.start + timedelta(hours=1)
        while moment <= min(truth.end + timedelta(hours=2), end):
            moments.append(moment)
            moment += timedelta(hours=1)
    return moments


def pass_times(start: datetime, end: datetime, every: timedelta,
               first_after: timedelta) -> list[datetime]:
    moments, now = [], start + first_after
    while now <= end:
        moments.append(now)
        now += every
    return moments


# ---------------------------------------------------------------------------- ground truth

#: per incident kind: (finding kind, level of the place it must name, counts as detection).
#: Alarms of the other (explaining) kinds are about the incident, so they are no false
#: alarms, but they do not count as finding it.
RULES: dict[str, list[tuple[str, str, bool]]] = {
    "background_leak": [("night_flow", "dma", True), ("burst", "dma", True),
                        ("water_balance", "dma", True)],
    "burst": [("burst", "dma", True), ("night_flow", "dma", True),
              ("water_balance", "dma", True)],
    "customer_leak": [("customer_leak", "household", True), ("night_flow", "dma", False)],
    "demand_surge": [("shortage", "village", True), ("pump_dry_run", "wells", False),
                     ("pump_cycling", "wells", False), ("pump_overcurrent", "wells", False)],
    "chlorinator_failure": [("quality_limit", "analysers", True),
                            ("quality_event", "analysers", False)],
    "turbidity_event": [("quality_limit", "analysers", True),
                        ("quality_event", "analysers", True)],
    "meter_offline": [("device_silent", "household", True)],
    "low_battery": [("low_battery", "household", True), ("valve_closed", "household", False)],
    "zero_balance": [("valve_closed", "household", True)],
    "tamper": [("tamper", "household", True), ("valve_closed", "household", False)],
    "pump_fault": [("pump_fault", "wells", True), ("pump_dry_run", "wells", False),
                   ("pump_overcurrent", "wells", False)],
    # not scripted: what the prepaid logic does on its own
    "natural_valve_closed": [("valve_closed", "household", True)],
}
#: hours within which an incident kind must be found (issue 4 targets)
DEADLINE_H = {"background_leak": 24.0, "burst": 24.0, "customer_leak": 48.0}
NATURAL_LABEL = "valve closed (prepaid, natural)"


@dataclass
class Truth:
    """An incident as scored: where it is (ids per level) and the times that matter."""

    label: str
    kind: str
    ids: dict[str, frozenset[str]]
    start: datetime
    end: datetime | None
    reference: datetime  # time to detect counts from here
    share_of_inflow: float | None = None
    tank_dry_at: datetime | None = None
    breach_reading_at: datetime | None = None  # chlorinator: first reading below the limit


def _when(effect: dict[str, float | str], key: str) -> datetime | None:
    value = effect.get(key)
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _levels(county: County, incident: Incident) -> dict[str, frozenset[str]]:
    """Ids of the incident's place per level (household, dma, village, analysers, wells)."""
    target = incident.target
    household = next((h for h in county.households if h.id == target), None)
    village = (household.village if household else next(
        (d.village for d in county.dmas for b in d.branches if b.id == target), None)
        or next((w.village for w in county.wells if w.id == target), None)
        or next((a.village for a in county.analysers if a.id == target), None) or target)
    analysers = [a.id for a in county.analysers if a.village == village]
    if incident.kind == "turbidity_event" and target in analysers:
        analysers = [target]
    elif incident.kind == "chlorinator_failure":
        analysers.append(village)
    wells = [w.id for w in county.wells if w.village == village]
    if incident.kind == "pump_fault":
        wells = [target]
    return {
        "household": frozenset({household.id, household.meter} if household else ()),
        "dma": frozenset({f"dma-{village}"}), "village": frozenset({village}),
        "analysers": frozenset(analysers), "wells": frozenset(wells),
    }


def first_breach(readings: pd.DataFrame, county: County, village: str,
                 after: datetime) -> datetime | None:
    """The first free-chlorine reading below its site's GB 5749 limit in ``village``."""
    sites = {a.id: a.site for a in county.analysers if a.village == village}
    chlorine = readings[(readings["field"] == "free_chlorine_mgl")
                        & readings["device"].isin(list(sites))
                        & (readings["time"] >= pd.Timestamp(after))]
    limits = chlorine["device"].map(
        {a: OUTLET_LIMIT_MGL if s == "outlet" else TAP_LIMIT_MGL for a, s in sites.items()})
    below = chlorine[chlorine["value"] < limits.astype(float)]
    return None if below.empty else below["time"].min().to_pydatetime()


def truths_of(run: SimulatedRun) -> list[Truth]:
    """The scripted incidents with their measured effects, and the natural valve closures."""
    truths = []
    incident_households: set[str] = set()
    for scripted in run.scripted:
        incident, effect = scripted.incident, scripted.incident.effect
        started = _when(effect, "started_at")
        if started is None:  # never became active within the run
            continue
        levels = _levels(run.county, incident)
        incident_households |= levels["household"]
        reference = started
        breach = None
        if incident.kind == "zero_balance":
            reference = _when(effect, "valve_closed_at") or started
        elif incident.kind == "chlorinator_failure":
            village = next(iter(levels["village"]))
            breach = first_breach(run.readings, run.county, village, started)
            reference = breach or started
        share = effect.get("share_of_mean_inflow")
        truths.append(Truth(
            scripted.label, incident.kind, levels, started,
            _when(effect, "ended_at") or incident.end, reference,
            share_of_inflow=float(share) if isinstance(share, float) else None,
            tank_dry_at=_when(effect, "tank_dry_at"), breach_reading_at=breach))
    by_id = {h.id: h for h in run.county.households}
    for closure in run.closures:
        household = by_id[closure.household]
        if household.id in incident_households:
            continue
        if (closure.reopened_at or run.end) - closure.closed_at < MIN_NATURAL_CLOSURE:
            continue
        truths.append(Truth(NATURAL_LABEL, "natural_valve_closed",
                            {"household": frozenset({household.id, household.meter})},
                            closure.closed_at, closure.reopened_at, closure.closed_at))
    return truths


# ---------------------------------------------------------------------------- scoring


@dataclass
class Outcome:
    """How one system did on one incident."""

    label: str
    kind: str
    seed: int
    detected: bool
    detected_at: str | None
    hours_to_detect: float | None
    within_deadline: bool | None
    lead_days: float | None = None  # shortage: tank dry time minus detection
    first_reading: bool | None = None  # chlorine: flagged by the first pass after the breach
    share_of_inflow: float | None = None


def _matches(episode: Episode, truth: Truth, *, detecting: bool, until: datetime) -> bool:
    for kind, level, detects in RULES[truth.kind]:
        if kind != episode.kind or (detecting and not detects):
            continue
        if not episode.ids & truth.ids.get(level, frozenset()):
            continue
        latest = (truth.end or until) + GRACE
        if truth.start <= episode.detected_at <= latest:
            return True
    return False


def score_incident(truth: Truth, episodes: Sequence[Episode], passes: Sequence[datetime],
                   seed: int, end: datetime) -> Outcome:
    found = sorted((e for e in episodes if _matches(e, truth, detecting=True, until=end)),
                   key=lambda e: e.detected_at)
    outcome = Outcome(truth.label, truth.kind, seed, bool(found), None, None, None,
                      share_of_inflow=truth.share_of_inflow)
    if not found:
        if truth.kind in DEADLINE_H:
            outcome.within_deadline = False
        if truth.kind == "chlorinator_failure":
            outcome.first_reading = False
        return outcome
    first = found[0]
    outcome.detected_at = first.detected_at.isoformat()
    outcome.hours_to_detect = round((first.detected_at - truth.reference).total_seconds()
                                    / 3600, 2)
    if truth.kind in DEADLINE_H:
        outcome.within_deadline = outcome.hours_to_detect <= DEADLINE_H[truth.kind]
    if truth.tank_dry_at is not None:
        outcome.lead_days = round((truth.tank_dry_at - first.detected_at).total_seconds()
                                  / 86400, 2)
    if truth.breach_reading_at is not None:
        first_pass = next((p for p in passes if p >= truth.breach_reading_at), None)
        outcome.first_reading = any(
            first_pass is not None and e.detected_at <= first_pass
            and e.started_at <= truth.breach_reading_at for e in found)
    return outcome


def explain(episodes: Sequence[Episode], truths: Sequence[Truth], county: County,
            tank_dry_at: dict[str, datetime], end: datetime) -> list[Episode]:
    """Mark the episodes some incident accounts for; return the rest: the false alarms."""
    dry_villages = {tank.removeprefix("tank-"): when for tank, when in tank_dry_at.items()}
    false_alarms = []
    for episode in episodes:
        truth = next((t for t in truths if _matches(episode, t, detecting=False, until=end)),
                     None)
        if truth is not None:
            episode.explained_by = truth.label
            continue
        dry = next((when for village, when in dry_villages.items() if village in episode.ids),
                   None)
        if episode.kind == "shortage" and dry is not None and \
                dry - timedelta(days=14) <= episode.detected_at <= dry + GRACE:
            episode.explained_by = "a tank ran dry"
            continue
        false_alarms.append(episode)
    return false_alarms


@dataclass
class SystemScore:
    """One system (the analysis or the baseline) over every run."""

    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    false_alarms: list[Episode] = field(default_factory=list)
    dma_days: float = 0.0
    pass_s: list[float] = field(default_factory=list)

    def per_100_dma_days(self) -> float:
        return 100 * len(self.false_alarms) / self.dma_days if self.dma_days else 0.0


def score_run(system: SystemScore, result: Replay, truths: Sequence[Truth], run: SimulatedRun,
              scored_kinds: set[str] | None = None) -> None:
    """Add one replay's outcomes and false alarms to ``system``."""
    for truth in truths:
        if scored_kinds is None or truth.kind in scored_kinds:
            system.outcomes.append(score_incident(truth, result.episodes, result.passes,
                                                  run.seed, run.end))
    system.false_alarms += explain(result.episodes, truths, run.county, run.tank_dry_at,
                                   run.end)
    span_days = (run.end - result.passes[0]).total_seconds() / 86400 if result.passes else 0.0
    system.dma_days += len(run.county.dmas) * span_days
    system.pass_s += result.pass_s


# ---------------------------------------------------------------------------- report


@dataclass
class Target:
    name: str
    detector: str
    baseline: str
    passed: bool | None  # None: nothing to judge (no such incident in the runs)


def _rate(outcomes: Sequence[Outcome]) -> tuple[int, int]:
    return sum(o.detected for o in outcomes), len(outcomes)


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


def targets(detector: SystemScore | None, baseline: SystemScore) -> list[Target]:
    """The issue's targets, judged on the detector (the baseline's figures alongside)."""

    def leaks(score: SystemScore | None) -> list[Outcome]:
        return [o for o in (score.outcomes if score else [])
                if o.kind == "burst" or (o.kind == "background_leak"
                                         and (o.share_of_inflow or 0) >= 0.05 - 1e-9)]

    def within(outcomes: Sequence[Outcome]) -> tuple[str, bool | None]:
        if not outcomes:
            return "no such incidents", None
        hits = sum(bool(o.within_deadline) for o in outcomes)
        return f"{hits}/{len(outcomes)} in time", hits == len(outcomes)

    def kind(score: SystemScore | None, name: str) -> list[Outcome]:
        return [o for o in (score.outcomes if score else []) if o.kind == name]

    rows = []
    text, ok = within(leaks(detector))
    rows.append(Target("bursts and leaks >= 5% of inflow found within 24 h", text,
                       within(leaks(baseline))[0], ok))
    text, ok = within(kind(detector, "customer_leak"))
    rows.append(Target("customer-side leaks found within 48 h", text, "n/a", ok))
    rate = detector.per_100_dma_days() if detector else math.nan
    rows.append(Target("false alarms <= 1 per 100 DMA-days",
                       f"{rate:.2f}" if detector else "-",
                       f"{baseline.per_100_dma_days():.2f}",
                       rate <= 1.0 if detector else None))
    surges = [o for o in kind(detector, "demand_surge")]
    leads = [o.lead_days for o in surges if o.lead_days is not None]
    dried = [o for o in surges if o.lead_days is not None or not o.detected]
    if detector and dried:
        lead_ok = all(o.detected and (o.lead_days or 0) >= 7 for o in dried)
        text = (f"lead {min(leads):.1f}-{max(leads):.1f} d, found {_rate(dried)[0]}/"
                f"{len(dried)}" if leads else f"found 0/{len(dried)}")
        rows.append(Target("shortages flagged >= 7 days before the tank runs dry", text,
                           "n/a", lead_ok))
    else:
        rows.append(Target("shortages flagged >= 7 days before the tank runs dry",
                           "no tank ran dry" if detector else "-", "n/a", None))
    chlorine = [o for o in kind(detector, "chlorinator_failure")]
    hits = sum(bool(o.first_reading) for o in chlorine)
    rows.append(Target("chlorine breach flagged at the first reading below the limit",
                       f"{hits}/{len(chlorine)}" if chlorine else "-", "n/a",
                       hits == len(chlorine) if chlorine else None))
    return rows


def table(detector: SystemScore | None, baseline: SystemScore) -> str:
    labels: list[str] = []
    for outcome in (detector.outcomes if detector else []) + baseline.outcomes:
        if outcome.label not in labels:
            labels.append(outcome.label)
    lines = [f"{'incident':<32} {'n':>3} | {'found':>6} {'in time':>7} {'median h':>8} "
             f"{'max h':>6} | {'baseline':>8} {'median h':>8}"]
    lines.append("-" * len(lines[0]))
    for label in labels:
        ours = [o for o in (detector.outcomes if detector else []) if o.label == label]
        theirs = [o for o in baseline.outcomes if o.label == label]
        n = len(ours) or len(theirs)
        hours = [o.hours_to_detect for o in ours if o.hours_to_detect is not None]
        deadline = [o for o in ours if o.within_deadline is not None]
        in_time = (f"{sum(bool(o.within_deadline) for o in deadline)}/{len(deadline)}"
                   if deadline else "-")
        found = "{}/{}".format(*_rate(ours)) if ours else "-"
        base = "{}/{}".format(*_rate(theirs)) if theirs else "n/a"
        base_hours = [o.hours_to_detect for o in theirs if o.hours_to_detect is not None]
        lines.append(f"{label:<32} {n:>3} | {found:>6} {in_time:>7} {_median(hours):>8} "
                     f"{(f'{max(hours):.1f}' if hours else '-'):>6} | {base:>8} "
                     f"{_median(base_hours):>8}")
    return "\n".join(lines)


def false_alarm_lines(score: SystemScore) -> str:
    kinds = Counter(e.kind for e in score.false_alarms)
    detail = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"
    villages = Counter(next((i.removeprefix("dma-") for i in sorted(e.ids)
                             if re.fullmatch(r"(dma-)?v\d{3}", i)), "?")
                       for e in score.false_alarms)
    where = ", ".join(f"{v} {n}" for v, n in villages.most_common(4))
    return (f"{score.name}: {len(score.false_alarms)} in {score.dma_days:.0f} DMA-days = "
            f"{score.per_100_dma_days():.2f} per 100 DMA-days ({detail}"
            + (f"; most in villages {where}" if where else "") + ")")


# ---------------------------------------------------------------------------- main


@dataclass
class Config:
    seeds: int
    villages: int
    households: int
    days: float
    every_h: float
    lookback_days: float
    first_pass_h: float
    baseline_threshold: float
    scenario: str
    clean_seeds: int
    jobs: int


def run_seed(seed: int, config: Config, templates: Sequence[IncidentTemplate],
             detector_score: SystemScore | None, baseline_score: SystemScore,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Simulate one seed (with incidents, and clean) and score both systems on it."""
    county = build_county(seed, config.villages, config.households)
    variants = [("incidents", place_incidents(templates, county, START, seed))]
    if seed <= config.clean_seeds:
        variants.append(("clean", []))
    timings: dict[str, Any] = {"seed": seed}
    for name, scripted in variants:
        run = simulate(county.model_copy(deep=True), scripted, seed, START, config.days)
        truths = truths_of(run)
        passes = pass_times(run.start, run.end, timedelta(hours=config.every_h),
                            timedelta(hours=config.first_pass_h))
        passes = sorted(set(passes) | set(extra_passes(truths, run.end)))
        lookback = timedelta(days=config.lookback_days)
        baseline = NightFlowBaseline(run.county, run.readings, config.baseline_threshold)
        score_run(baseline_score, replay(run.readings, baseline, passes, lookback), truths,
                  run, scored_kinds={"background_leak", "burst"})
        analysis_s = 0.0
        detect = analysis_detector(run.county) if detector_score is not None else None
        if detector_score is not None and detect is not None:
            result = replay(run.readings, detect, passes, lookback, config.jobs)
            score_run(detector_score, result, truths, run)
            analysis_s = sum(result.pass_s)
        timings[name] = {"readings": len(run.readings), "simulate_s": round(run.simulate_s, 2),
                         "passes": len(passes), "analysis_s": round(analysis_s, 2)}
        log(f"seed {seed} {name}: {len(run.readings):,} readings simulated in "
            f"{run.simulate_s:.1f} s; {len(passes)} passes, analysis {analysis_s:.1f} s")
    return timings


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N")
    parser.add_argument("--villages", type=int, default=12)
    parser.add_argument("--households", type=int, default=30, help="households per village")
    parser.add_argument("--days", type=float, default=19.0)
    parser.add_argument("--every", type=float, default=8.0,
                        help="hours between passes (from 05:00 local on day 2: 05, 13, 21)")
    parser.add_argument("--lookback-days", type=float, default=15.0,
                        help="readings each pass sees")
    parser.add_argument("--first-pass", type=float, default=29.0,
                        help="hours after the start of the first pass")
    parser.add_argument("--baseline-threshold", type=float, default=0.28,
                        help="baseline: night minimum above this share of mean inflow (0.28 "
                        "is just above every clean night of seeds 1-3 at the defaults)")
    parser.add_argument("--scenario", type=Path, default=SCENARIOS / "graded.yaml")
    parser.add_argument("--clean-seeds", type=int, default=1,
                        help="seeds 1..N also run without incidents (false alarms only)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes running detection passes")
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    config = Config(args.seeds, args.villages, args.households, args.days, args.every,
                    args.lookback_days, args.first_pass, args.baseline_threshold,
                    str(args.scenario), args.clean_seeds, args.jobs)
    templates = load_templates(args.scenario)
    probe = analysis_detector(build_county(1, 1, 1))
    detector_score = SystemScore("analysis") if probe is not None else None
    baseline_score = SystemScore(f"baseline (night minimum > {args.baseline_threshold:.0%} "
                                 "of mean inflow)")

    def log(line: str) -> None:
        print(line, flush=True)  # noqa: T201

    if detector_score is None:
        log("analysis.pipeline.analyse is not importable: scoring the baseline only")
    began = time.perf_counter()
    timings = [run_seed(seed, config, templates, detector_score, baseline_score, log)
               for seed in range(1, args.seeds + 1)]
    wall = time.perf_counter() - began
    rows = targets(detector_score, baseline_score)
    log(f"\n{args.seeds} seed(s) x {args.villages} villages x {args.households} households, "
        f"{args.days:g} days, a pass every {args.every:g} h on {args.lookback_days:g} days "
        f"of readings; {wall:.0f} s in all")
    log(table(detector_score, baseline_score))
    log("\nfalse alarms (alarm episodes matching no incident, incident and clean runs):")
    for score in (detector_score, baseline_score):
        if score is not None:
            log("  " + false_alarm_lines(score))
    if detector_score is not None and detector_score.pass_s:
        log(f"  analysis pass: median {statistics.median(detector_score.pass_s):.2f} s, "
            f"max {max(detector_score.pass_s):.2f} s")
    log("\ntargets (judged on the analysis; baseline alongside):")
    for row in rows:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[row.passed]
        log(f"  {row.name:<62} {row.detector:<28} {verdict:<4}  baseline: {row.baseline}")
    if args.json:
        document = {
            "config": asdict(config), "wall_s": round(wall, 1), "runs": timings,
            "targets": [asdict(r) for r in rows],
            "systems": {score.name: {
                "outcomes": [asdict(o) for o in score.outcomes],
                "false_alarms": [_episode_json(e) for e in score.false_alarms],
                "dma_days": round(score.dma_days, 1),
                "false_alarms_per_100_dma_days": round(score.per_100_dma_days(), 3),
                "pass_s": [round(s, 3) for s in score.pass_s],
            } for score in (detector_score, baseline_score) if score is not None},
        }
        args.json.write_text(json.dumps(document, indent=1))
    if detector_score is None:
        return 2
    return 0 if all(row.passed is not False for row in rows) else 1


def _episode_json(episode: Episode) -> dict[str, Any]:
    return {"kind": episode.kind, "subject": episode.subject,
            "started_at": episode.started_at.isoformat(),
            "detected_at": episode.detected_at.isoformat(),
            "cleared_at": episode.cleared_at.isoformat() if episode.cleared_at else None}


if __name__ == "__main__":
    sys.exit(main())
