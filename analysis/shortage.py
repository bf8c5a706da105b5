"""Seasonal shortage: per scheme, source capacity against a demand forecast, and plan levels.

A scheme is a village's wells and tank (``Place.scheme`` carries the village id). Pure
functions on pandas objects; the long readings format is ``analysis.readings``. Hourly frames
are indexed by the END of the hour (UTC) with one column per well or village. Units: levels
in m below ground (well) or m3 (tank), flows m3/h, capacity and demand m3/day, times in days
ahead of the evaluation unless a name says otherwise.

The model, per scheme and evaluation moment ``c``:

- **Rest level** of each well: ``well_level_m - drawdown_m_per_m3h x flow_m3h``, from
  readings taken once the pump has kept its state for ``steady_pump_min`` (the level lags
  the pump by ~30 min); hourly medians; a least-squares trend over ``trend_window_days``.
- **Capacity** at ``t`` days ahead: per well ``allowed_hours_per_day x min(rated_flow,
  (intake - clearance - rest(t)) / drawdown)``, zero for a pump reporting a fault: as the
  rest level falls toward the intake the pump can give less and less.
- **Demand**: DMA inflow (what the source must deliver, leakage included) over trailing
  24 h windows, hours with the tank dry left out (supply was cut, demand unseen), divided
  by the weekday factor; the latest window is the level, the windows' slope (clipped, held
  after ``demand_trend_days``) the trend; the seasonal cosine and the weekday factor shape
  the projection.
- **Tank**: stock now, plus capacity minus demand, capped at the tank's capacity, stepped
  every ``projection_step_h``; ``days_to_shortfall`` is when it falls to
  ``dry_tank_share`` of capacity (``horizon_days`` when it never does within the horizon).
- **Plan level** IV..I from ``ShortageParams.triggers`` (days to shortfall, share of today's
  demand that cannot be met, people affected), with hysteresis: the level is replayed over
  ``hysteresis_steps`` earlier moments; a level is entered when its triggers are met and
  held until they miss by ``hold_margin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from analysis.findings import Finding
from analysis.params import PlanTrigger, ShortageParams
from analysis.readings import local, series
from common.alerts import AlertKind, Evidence, Place, PlanLevel, SeriesWindow, Severity
from common.register import County, Village, Well

#: escalating order; index + 1 is the rank used in comparisons (0 = no plan level)
LEVELS: tuple[PlanLevel, ...] = ("IV", "III", "II", "I")
#: ``supply_outlook.plan_level``: the level's own number, 0 for none (dashboards map it)
PLAN_NUMBER: dict[PlanLevel | None, int] = {None: 0, "IV": 4, "III": 3, "II": 2, "I": 1}
SUPPLY_COLUMNS = ["village", "township", "demand_m3d", "capacity_m3d", "litres_per_person_day",
                  "days_to_shortfall", "guarantee_rate_pct", "well_margin_m", "plan_level",
                  "unmet_share", "people_affected", "well_trend_m_per_day",
                  "tank_trend_m3d", "tank_volume_m3"]
_SEVERITY: dict[PlanLevel | None, Severity] = {
    None: Severity.LOW, "IV": Severity.MEDIUM, "III": Severity.HIGH, "II": Severity.CRITICAL,
    "I": Severity.CRITICAL}


# --------------------------------------------------------------------------- hourly inputs


@dataclass(frozen=True)
class SchemeHours:
    """Hourly inputs per scheme (index = hour end, UTC)."""

    rest_m: pd.DataFrame  # columns = wells: rest level, m below ground
    fault: pd.DataFrame  # columns = wells: 1.0 while the drive reports a fault
    inflow_m3h: pd.DataFrame  # columns = villages: mean DMA inflow, NaN when unknown or cut
    tank_m3: pd.DataFrame  # columns = villages: last tank volume of the hour
    tank_dry: pd.DataFrame  # columns = villages: True if the tank was dry in the hour


def _hourly(rows: pd.DataFrame, how: str) -> pd.DataFrame:
    """Long (time, device, value) rows -> hour-end x device, aggregated by ``how``."""
    if rows.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    hour = rows["time"].dt.ceil("h")
    table = rows.assign(hour=hour).groupby(["hour", "device"])["value"].agg(how).unstack()
    table.columns = table.columns.astype(str)
    table.columns.name = None
    table.index.name = None
    return table.sort_index()


def rest_levels(readings: pd.DataFrame, register: County,
                params: ShortageParams) -> pd.DataFrame:
    """Hourly rest level (m below ground) of each well, from its pump drive's readings.

    The rest level is the depth to water without the pump's drawdown: ``well_level_m -
    drawdown_m_per_m3h x flow_m3h``. Readings count once the pump has kept its running
    state for ``steady_pump_min`` minutes; an hour without such readings takes the median
    of all its readings.
    """
    drawdown = {w.id: w.drawdown_m_per_m3h for w in register.wells}
    rows = readings[(readings["kind"] == "pump")
                    & readings["field"].isin(["well_level_m", "flow_m3h", "running"])
                    & readings["device"].isin(list(drawdown))]
    if rows.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    table = rows.set_index(["device", "time", "field"])["value"].unstack("field")
    table = table.reindex(columns=["well_level_m", "flow_m3h", "running"]).reset_index()
    table = table.dropna(subset=["well_level_m"]).sort_values(["device", "time"])
    flow = table["flow_m3h"].fillna(0.0)
    running = table["running"].fillna((flow > 0).astype(float)) > 0.5
    device = table["device"]
    changed = (running != running.shift()) | (device != device.shift())
    run_start = table["time"].groupby(changed.cumsum()).transform("min")
    steady = (table["time"] - run_start) >= pd.Timedelta(minutes=params.steady_pump_min)
    rest = table["well_level_m"] - device.map(drawdown).astype(float) * flow
    frame = pd.DataFrame({"time": table["time"], "device": device, "value": rest})
    hourly_all = _hourly(frame, "median")
    hourly_steady = _hourly(frame[steady.to_numpy()], "median")
    return hourly_steady.reindex(index=hourly_all.index, columns=hourly_all.columns).fillna(
        hourly_all)


def scheme_hours(readings: pd.DataFrame, register: County,
                 params: ShortageParams) -> SchemeHours:
    """The hourly inputs of :func:`supply_outlook` from cleaned long readings."""
    tanks = {t.id: t for t in register.tanks}
    village_of_inflow = {d.inflow_meter: d.village for d in register.dmas}
    tank_rows = series(readings, "tank", "volume_m3")
    tank_rows = tank_rows[tank_rows["device"].isin(list(tanks))]
    dry_volume = tank_rows["device"].map(
        {t.id: params.dry_tank_share * t.capacity_m3 for t in tanks.values()}).astype(float)
    tank_last = _hourly(tank_rows, "last")
    tank_dry = _hourly(tank_rows.assign(value=(tank_rows["value"] <= dry_volume).astype(float)),
                       "max") > 0.5
    village_of_tank = {t.id: t.village for t in tanks.values()}
    tank_last = tank_last.rename(columns=village_of_tank)
    tank_dry = tank_dry.rename(columns=village_of_tank)
    inflow = _hourly(series(readings, "dma_inflow", "flow_m3h"), "mean")
    inflow = inflow[[c for c in inflow.columns if c in village_of_inflow]].rename(
        columns=village_of_inflow)
    cut = tank_dry.reindex(index=inflow.index, columns=inflow.columns).fillna(False)
    inflow = inflow.mask(cut.astype(bool))
    fault = _hourly(series(readings, "pump", "fault_code"), "last")
    return SchemeHours(rest_m=rest_levels(readings, register, params),
                       fault=(fault.fillna(0.0) != 0).astype(float), inflow_m3h=inflow,
                       tank_m3=tank_last, tank_dry=tank_dry)


# --------------------------------------------------------------------------- shapes


def seasonal_factor(moments: pd.DatetimeIndex, utc_offset_hours: float,
                    params: ShortageParams) -> np.ndarray:
    """Demand relative to the annual mean: 1 + amplitude x cos(day of year from the peak)."""
    at = local(moments, utc_offset_hours)
    day = at.day_of_year.to_numpy() + at.hour.to_numpy() / 24
    return 1.0 + params.seasonal_amplitude * np.cos(
        2 * np.pi * (day - params.seasonal_peak_day) / 365.25)


def weekday_factor(moments: pd.DatetimeIndex, utc_offset_hours: float,
                   params: ShortageParams) -> np.ndarray:
    """Demand relative to a weekday: ``weekend_factor`` on local Saturdays and Sundays."""
    weekend = local(moments, utc_offset_hours).day_of_week.to_numpy() >= 5
    return np.where(weekend, params.weekend_factor, 1.0)


# --------------------------------------------------------------------------- evaluations


@dataclass(frozen=True)
class SchemeArrays:
    """:class:`SchemeHours` on one hourly grid as arrays (rows = hour ends, UTC)."""

    grid: pd.DatetimeIndex
    villages: list[Village]  # columns of the per-village arrays
    wells: list[Well]  # columns of the per-well arrays
    well_village: np.ndarray  # village column of each well
    rest_m: np.ndarray  # hours x wells
    fault: np.ndarray  # hours x wells: 1 while the drive reports a fault (carried forward)
    demand_m3h: np.ndarray  # hours x villages: inflow / weekday factor; NaN unknown or cut
    tank_m3: np.ndarray  # hours x villages, NaN where unknown
    tank_capacity_m3: np.ndarray  # villages (0 without a tank)


def scheme_arrays(hours: SchemeHours, register: County, end: pd.Timestamp,
                  params: ShortageParams) -> SchemeArrays:
    """Lay the hourly frames on one grid ending at ``end``."""
    frames = [hours.rest_m, hours.inflow_m3h, hours.tank_m3]
    starts = [f.index[0] for f in frames if len(f.index)]
    first = min(starts) if starts else end
    grid = pd.date_range(min(first, end), end, freq="h")
    villages = list(register.villages)
    wells = [w for w in register.wells if any(v.id == w.village for v in villages)]
    column = {v.id: i for i, v in enumerate(villages)}
    village_ids = [v.id for v in villages]
    well_ids = [w.id for w in wells]
    shape = weekday_factor(grid, register.utc_offset_hours, params)
    inflow = hours.inflow_m3h.reindex(index=grid, columns=village_ids).to_numpy(dtype=float)
    fault = hours.fault.reindex(index=grid, columns=well_ids).ffill().fillna(0.0)
    tanks = {t.village: t.capacity_m3 for t in register.tanks}
    return SchemeArrays(
        grid=grid, villages=villages, wells=wells,
        well_village=np.array([column[w.village] for w in wells], dtype=int),
        rest_m=hours.rest_m.reindex(index=grid, columns=well_ids).to_numpy(dtype=float),
        fault=fault.to_numpy(dtype=float),
        demand_m3h=inflow / shape[:, None],
        tank_m3=hours.tank_m3.reindex(index=grid, columns=village_ids).to_numpy(dtype=float),
        tank_capacity_m3=np.array([tanks.get(v, 0.0) for v in village_ids]))


@dataclass(frozen=True)
class Outlooks:
    """Every scheme at one evaluation moment; arrays over ``SchemeArrays.villages``."""

    known: np.ndarray  # bool: a demand estimate exists (the scheme could be judged)
    demand_m3d: np.ndarray  # forecast over the next 24 h
    capacity_m3d: np.ndarray  # what the wells can give over the next 24 h
    days_to_shortfall: np.ndarray  # horizon_days when never within the horizon
    unmet_share: np.ndarray  # of the next 24 h's demand, after the tank's stock
    people_affected: np.ndarray
    well_margin_m: np.ndarray  # least water above the level where a pump loses rated flow
    well_trend_m_per_day: np.ndarray  # fastest fall of a rest level (positive = deepening)
    tank_volume_m3: np.ndarray
    tank_trend_m3d: np.ndarray


class _Sums:
    """Cumulative sums for least-squares lines over any trailing window of rows."""

    def __init__(self, values: np.ndarray) -> None:
        valid = np.isfinite(values)
        x = (np.arange(values.shape[0], dtype=float) / 24)[:, None] * valid
        y = np.where(valid, values, 0.0)
        zero = np.zeros((1, values.shape[1]))
        self.n, self.x, self.y, self.xx, self.xy = (
            np.vstack([zero, np.cumsum(a, axis=0)]) for a in (valid.astype(float), x, y,
                                                               x * x, x * y))
        rows = np.arange(values.shape[0])[:, None]
        self.last = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)
        self.first = np.flip(np.minimum.accumulate(
            np.flip(np.where(valid, rows, values.shape[0]), axis=0), axis=0), axis=0)
        self.values = values

    def fit(self, end: int, rows: int, min_span_rows: float,
            min_count: int = 6) -> tuple[np.ndarray, np.ndarray]:
        """(value fitted at row ``end``, slope per day) over rows ``(end - rows, end]``.

        Where the window holds too little, the last value and a NaN slope."""
        begin = max(end - rows + 1, 0)
        n, sx, sy, sxx, sxy = (a[end + 1] - a[begin] for a in (self.n, self.x, self.y,
                                                                 self.xx, self.xy))
        last = self.last[end]
        last_value = np.where(last >= begin, self.values[np.maximum(last, 0),
                                                         np.arange(len(last))], np.nan)
        span = last - self.first[begin]
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
            fitted = sy / n + slope * (end / 24 - sx / n)
        enough = (n >= min_count) & (span >= min_span_rows)
        return np.where(enough, fitted, last_value), np.where(enough, slope, np.nan)


def _demand(arrays: SchemeArrays, end: int, params: ShortageParams
            ) -> tuple[np.ndarray, np.ndarray]:
    """Per village: (weekday demand level m3/day, trend share per day) as of row ``end``.

    Trailing 24 h windows (at least 12 hours known); the latest is the level, the slope
    of up to ``demand_window_days`` of them the trend (with at least 3 windows)."""
    values = arrays.demand_m3h
    valid = np.isfinite(values)
    sums = np.vstack([np.zeros((1, values.shape[1])),
                      np.cumsum(np.where(valid, values, 0.0), axis=0)])
    counts = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(valid, axis=0)])
    windows = []
    for back in range(params.demand_window_days):
        stop = end - 24 * back + 1
        begin = max(stop - 24, 0)
        if stop <= 0:
            windows.append(np.full(values.shape[1], np.nan))
            continue
        n = counts[stop] - counts[begin]
        with np.errstate(invalid="ignore", divide="ignore"):
            windows.append(np.where(n >= 12, 24 * (sums[stop] - sums[begin]) / n, np.nan))
    table = np.array(windows)  # windows x villages, newest first
    known = np.isfinite(table)
    newest = np.argmax(known, axis=0)
    level = np.where(known.any(axis=0), table[newest, np.arange(table.shape[1])], np.nan)
    ages = -np.arange(table.shape[0], dtype=float)[:, None] * known
    n = known.sum(axis=0)
    y = np.where(known, table, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = ((n * (ages * y).sum(axis=0) - ages.sum(axis=0) * y.sum(axis=0))
                 / (n * (ages * ages).sum(axis=0) - ages.sum(axis=0) ** 2))
        share = np.where((n >= 3) & (level > 0), slope / level, 0.0)
    limit = params.max_demand_trend_share
    return level, np.clip(np.nan_to_num(share), -limit, limit)


def evaluate(arrays: SchemeArrays, end: int, utc_offset_hours: float,
             params: ShortageParams, rest: _Sums, tank: _Sums) -> Outlooks:
    """Every scheme's outlook as of grid row ``end``."""
    level, trend = _demand(arrays, end, params)
    window_rows = int(round(params.trend_window_days * 24))
    span_rows = params.min_trend_span_days * 24
    wells = arrays.wells
    rest_now, slope = rest.fit(end, window_rows, span_rows)
    static = np.array([w.static_level_m for w in wells])
    rest_now = np.where(np.isfinite(rest_now), rest_now, static)  # never seen: the register
    slope = np.nan_to_num(slope)
    floor = np.array([w.intake_depth_m for w in wells]) - params.intake_clearance_m
    drawdown = np.array([w.drawdown_m_per_m3h for w in wells])
    rated = np.array([w.rated_flow_m3h for w in wells])
    allowed = np.array([w.allowed_hours_per_day for w in wells])
    working = arrays.fault[end] < 0.5 if len(wells) else np.zeros(0, dtype=bool)
    step_days = params.projection_step_h / 24
    ahead = np.arange(0.0, params.horizon_days + step_days / 2, step_days)
    limited = (floor[:, None] - rest_now[:, None] - slope[:, None] * ahead) / drawdown[:, None]
    per_well = allowed[:, None] * np.clip(limited, 0.0, rated[:, None]) * working[:, None]
    n_villages = len(arrays.villages)
    capacity = np.zeros((n_villages, ahead.size))
    np.add.at(capacity, arrays.well_village, per_well)
    moments = pd.DatetimeIndex(arrays.grid[end] + pd.to_timedelta(ahead, unit="D"))
    season = seasonal_factor(moments, utc_offset_hours, params)
    shape = season / season[0] * weekday_factor(moments, utc_offset_hours, params)
    demand = (level[:, None] * (1 + trend[:, None] * np.minimum(ahead, params.demand_trend_days))
              * shape[None, :])
    _, tank_trend = tank.fit(end, window_rows, span_rows)
    last = tank.last[end]
    fresh = (last >= 0) & (end - last <= 3)
    # Unknown stock counts as none: the projection then errs early, not late.
    stock = np.where(fresh, tank.values[np.maximum(last, 0), np.arange(n_villages)], 0.0)
    days = _days_to_shortfall(capacity, demand, stock, arrays.tank_capacity_m3, step_days,
                              params)
    per_day = max(1, round(1 / step_days))
    demand_24h = np.nan_to_num(demand[:, :per_day].mean(axis=1))
    capacity_24h = capacity[:, :per_day].mean(axis=1)
    dry = params.dry_tank_share * arrays.tank_capacity_m3
    with np.errstate(invalid="ignore", divide="ignore"):
        unmet = np.where(demand_24h > 0, np.maximum(
            0.0, demand_24h - capacity_24h - np.maximum(0.0, stock - dry)) / demand_24h, 0.0)
    population = np.array([v.population for v in arrays.villages])
    short = (days < params.horizon_days) | (unmet > 0)
    margin = floor - (rest_now + drawdown * rated)
    return Outlooks(
        known=np.isfinite(level), demand_m3d=demand_24h, capacity_m3d=capacity_24h,
        days_to_shortfall=days, unmet_share=np.minimum(unmet, 1.0),
        people_affected=np.where(short, population, 0),
        well_margin_m=_per_village(margin, arrays.well_village, n_villages, np.fmin),
        well_trend_m_per_day=_per_village(slope, arrays.well_village, n_villages, np.fmax),
        tank_volume_m3=stock, tank_trend_m3d=tank_trend)


def _per_village(values: np.ndarray, village: np.ndarray, n_villages: int,
                 combine: np.ufunc) -> np.ndarray:
    result = np.full(n_villages, np.nan)
    combine.at(result, village, values)
    return result


def _days_to_shortfall(capacity: np.ndarray, demand: np.ndarray, stock: np.ndarray,
                       tank_m3: np.ndarray, step_days: float,
                       params: ShortageParams) -> np.ndarray:
    """Per village: days until the tank falls to ``dry_tank_share`` while demand exceeds
    capacity (0 if it already has; ``horizon_days`` if it never does)."""
    dry = params.dry_tank_share * tank_m3
    net = (capacity - np.nan_to_num(demand)) * step_days
    volume = np.minimum(stock, tank_m3)
    days = np.where((volume <= dry) & (net[:, 0] < 0), 0.0, np.nan)
    for index in range(net.shape[1]):
        change = net[:, index]
        after = np.minimum(volume + change, tank_m3)
        crossing = np.isnan(days) & (after <= dry) & (change < 0)
        if crossing.any():
            with np.errstate(invalid="ignore", divide="ignore"):
                fraction = np.clip((volume - dry) / (volume - after), 0.0, 1.0)
            days = np.where(crossing, (index + np.nan_to_num(fraction, nan=1.0)) * step_days,
                            days)
        volume = after
    return np.where(np.isnan(days), float(params.horizon_days), days)


# --------------------------------------------------------------------------- plan levels


def _met(trigger: PlanTrigger, outlooks: Outlooks, slack: float) -> np.ndarray:
    """Per village: whether ``trigger`` holds, thresholds relaxed by ``slack`` (0 = as
    written)."""
    met = np.zeros(outlooks.known.shape, dtype=bool)
    if trigger.max_days_to_shortfall is not None:
        met |= outlooks.days_to_shortfall <= trigger.max_days_to_shortfall * (1 + slack)
    if trigger.min_unmet_share is not None:
        met |= (outlooks.unmet_share > 0) & (
            outlooks.unmet_share >= trigger.min_unmet_share * (1 - slack))
    return met & (outlooks.people_affected >= trigger.min_people) & outlooks.known


def level_ranks(outlooks: Outlooks, params: ShortageParams, slack: float = 0.0) -> np.ndarray:
    """Per village: the highest plan level (1 = IV ... 4 = I) whose trigger holds, 0 none."""
    ranks = np.zeros(outlooks.known.shape, dtype=int)
    for trigger in params.triggers:
        rank = LEVELS.index(trigger.level) + 1
        ranks = np.where(_met(trigger, outlooks, slack), np.maximum(ranks, rank), ranks)
    return ranks


def plan_history(history: list[Outlooks], params: ShortageParams) -> np.ndarray:
    """Plan level ranks over successive evaluations (rows, oldest first) per village, with
    hysteresis: entered when a level's triggers hold, kept until they miss by
    ``hold_margin``."""
    previous = np.zeros(history[0].known.shape, dtype=int) if history else np.zeros(0, int)
    rows = []
    for outlooks in history:
        entered = level_ranks(outlooks, params)
        held = np.minimum(previous, level_ranks(outlooks, params, params.hold_margin))
        previous = np.maximum(entered, held)
        rows.append(previous)
    return np.array(rows)


# --------------------------------------------------------------------------- the detector


def guarantee_rate(hours: SchemeHours, consumption: pd.DataFrame | None, register: County,
                   params: ShortageParams) -> pd.Series:
    """Per village: % of complete local days supplied in full (tank never dry and, where
    meters tell, at least ``min_lpcd`` litres per person)."""
    rates: dict[str, float] = {}
    population = {v.id: v.population for v in register.villages}
    if hours.tank_dry.empty:
        return pd.Series(rates, dtype=float)
    dates = local(hours.tank_dry.index - pd.Timedelta(hours=1),
                  register.utc_offset_hours).normalize()
    grouped = hours.tank_dry.astype(float).groupby(dates)
    counts = grouped.count()
    cut = grouped.max()[counts >= 20]
    for village in cut.columns:
        days = cut[village].dropna()
        if days.empty:
            continue
        bad = days > 0.5
        if consumption is not None and not consumption.empty:
            mine = consumption[consumption["village"] == village]
            used = mine.groupby(pd.to_datetime(mine["day"]))["consumption_m3"].sum()
            lpcd = 1000 * used / max(population.get(village, 1), 1)
            low = (lpcd < params.min_lpcd).reindex(days.index, fill_value=False)
            bad = bad | low.astype(bool)
        rates[village] = 100.0 * float((~bad).mean())
    return pd.Series(rates, dtype=float)


def _lpcd(hours: SchemeHours, consumption: pd.DataFrame | None, village: Village,
          end: pd.Timestamp) -> float:
    """Litres per person per day: the last complete day's metered consumption, else the
    DMA inflow of the last 24 h."""
    if consumption is not None and not consumption.empty:
        mine = consumption[consumption["village"] == village.id].dropna(
            subset=["consumption_m3"])
        if not mine.empty:
            used = float(mine.sort_values("day")["consumption_m3"].iloc[-1])
            return 1000 * used / max(village.population, 1)
    if village.id not in hours.inflow_m3h.columns:
        return math.nan
    last_day = hours.inflow_m3h[village.id][end - pd.Timedelta(days=1):end]
    if last_day.notna().sum() < 12:
        return math.nan
    return 1000 * float(last_day.mean()) * 24 / max(village.population, 1)


def detect_shortages(readings: pd.DataFrame, register: County, params: ShortageParams,
                     now: datetime, consumption: pd.DataFrame | None = None
                     ) -> tuple[pd.DataFrame, list[Finding], set[str]]:
    """The supply outlook of every scheme and SHORTAGE findings, as of ``now``.

    Parameters
    ----------
    readings
        Cleaned long readings (``analysis.readings.clean``), up to ``now``.
    consumption
        Optional ``dma_days`` frame (columns village, day, consumption_m3: metered m3 per
        local day) for litres per person per day and the guarantee rate.

    Returns
    -------
    supply
        One row per scheme that could be evaluated, columns ``SUPPLY_COLUMNS``
        (``common.schema.ANALYSIS_FIELDS["supply_outlook"]`` plus village, township and
        the evidence numbers); ``plan_level`` 0 none, 4 = IV ... 1 = I.
    findings
        One SHORTAGE finding per scheme at plan level IV or above, subject = village id.
    evaluated
        The villages judged (a demand estimate from the DMA inflow).
    """
    stamp = pd.Timestamp(now)
    end = stamp.floor("h")
    hours = scheme_hours(readings, register, params)
    arrays = scheme_arrays(hours, register, end, params)
    guarantee = guarantee_rate(hours, consumption, register, params)
    rest, tank = _Sums(arrays.rest_m), _Sums(arrays.tank_m3)
    last = len(arrays.grid) - 1
    step = max(1, round(params.hysteresis_step_h))
    rows_back = [last - step * k for k in range(params.hysteresis_steps, -1, -1)
                 if last - step * k >= 0]
    history = [evaluate(arrays, row, register.utc_offset_hours, params, rest, tank)
               for row in rows_back]
    ranks = plan_history(history, params)
    current = history[-1]
    records: list[dict[str, object]] = []
    findings: list[Finding] = []
    evaluated: set[str] = set()
    for index, village in enumerate(arrays.villages):
        if not current.known[index]:
            continue
        evaluated.add(village.id)
        rank = int(ranks[-1, index])
        level = LEVELS[rank - 1] if rank else None
        record: dict[str, object] = {
            "village": village.id, "township": village.township,
            "litres_per_person_day": _lpcd(hours, consumption, village, end),
            "guarantee_rate_pct": float(guarantee.get(village.id, math.nan)),
            "plan_level": PLAN_NUMBER[level]}
        for name in ("demand_m3d", "capacity_m3d", "days_to_shortfall", "unmet_share",
                     "well_margin_m", "well_trend_m_per_day", "tank_trend_m3d",
                     "tank_volume_m3"):
            record[name] = float(getattr(current, name)[index])
        record["people_affected"] = int(current.people_affected[index])
        records.append(record)
        if level is not None:
            started = arrays.grid[rows_back[_run_start(list(ranks[:, index]))]]
            findings.append(_finding(register, village, level, record, started, stamp,
                                     params))
    return pd.DataFrame(records, columns=SUPPLY_COLUMNS), findings, evaluated


def _run_start(ranks: list[int]) -> int:
    """Index of the first evaluation of the trailing run with a plan level."""
    index = len(ranks) - 1
    while index > 0 and ranks[index - 1] > 0:
        index -= 1
    return index


def _finding(register: County, village: Village, level: PlanLevel, record: dict[str, object],
             started: pd.Timestamp, now: pd.Timestamp, params: ShortageParams) -> Finding:
    dma = next((d.id for d in register.dmas if d.village == village.id), None)
    evidence: Evidence = {name: _round(float(record[name]), digits)  # type: ignore[arg-type]
                          for name, digits in (("days_to_shortfall", 2), ("unmet_share", 4),
                                               ("demand_m3d", 2), ("capacity_m3d", 2),
                                               ("well_margin_m", 2),
                                               ("well_trend_m_per_day", 3),
                                               ("tank_volume_m3", 2), ("tank_trend_m3d", 2),
                                               ("litres_per_person_day", 1),
                                               ("guarantee_rate_pct", 1))}
    evidence["people_affected"] = int(record["people_affected"])  # type: ignore[call-overload]
    evidence["min_lpcd"] = params.min_lpcd
    days = float(record["days_to_shortfall"])  # type: ignore[arg-type]
    if days < params.horizon_days:
        what = f"demand outruns the source in {days:.1f} days"
    else:
        what = f"{float(record['unmet_share']):.0%} of demand cannot be met"  # type: ignore[arg-type]
    return Finding(
        kind=AlertKind.SHORTAGE, subject=village.id, severity=_SEVERITY[level],
        title=f"Shortage in {village.id} (plan level {level}): {what}",
        place=Place(township=village.township, village=village.id, scheme=village.id, dma=dma),
        started_at=_utc(started), evidence=evidence, plan_level=level,
        window=SeriesWindow(measurement="pump", fields=["well_level_m", "flow_m3h"],
                            tags={"village": village.id},
                            start=_utc(now - pd.Timedelta(days=params.trend_window_days)),
                            end=_utc(now)))


def _utc(moment: pd.Timestamp) -> datetime:
    return pd.Timestamp(moment).floor("s").to_pydatetime()


def _round(value: float, digits: int) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None
