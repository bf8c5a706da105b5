"""Leaks: per-DMA water balance, minimum night flow, bursts, customer-side leaks, KPIs.

Pure functions on pandas objects. Frames are indexed by UTC time; wide frames have one
column per device or DMA. Volumes are m3, flows m3/h. An hourly value at index ``t`` is
the volume of the hour ending at ``t`` (cumulative volume at ``t`` minus at ``t - 1h``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.findings import Finding
from analysis.params import LeakParams
from analysis.readings import local
from common.alerts import AlertKind, Evidence, Place, SeriesWindow, Severity
from common.register import County, Dma

ANOMALIES = ("rollover", "reset", "swap", "reverse", "glitch")
_MAD_TO_SIGMA = 1.4826


# --------------------------------------------------------------------------- cumulative meters


def continuous_volumes(volumes: pd.DataFrame, params: LeakParams, *,
                       max_flow_m3h: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn raw cumulative registers into continuous volumes, undoing wraps, resets, swaps.

    Parameters
    ----------
    volumes
        Long frame with columns ``time`` (UTC), ``device``, ``value`` (cumulative m3 as the
        register shows it).
    params
        Rollover moduli, reset and reverse-flow limits.
    max_flow_m3h
        Faster apparent flow between two readings is a glitch (m3/h).

    Returns
    -------
    continuous
        Columns time, device, value: m3 registered since the device's first reading here.
    anomalies
        Columns time, device, anomaly (one of ``ANOMALIES``), change_m3 (the raw step).
        Wraps add the modulus; a reset to near zero counts what the new register shows; a
        swap (a drop to another non-zero reading) and a glitch count nothing; reverse flow
        counts negative.
    """
    for column in ("time", "device", "value"):
        if column not in volumes.columns:
            raise ValueError(f"volumes lack column {column!r}")
    if volumes.empty:  # e.g. an export without meters
        return (pd.DataFrame({"time": pd.to_datetime([], utc=True), "device": [],
                              "value": []}),
                pd.DataFrame({"time": pd.to_datetime([], utc=True), "device": [],
                              "anomaly": [], "change_m3": []}))
    frame = _by_device(volumes)
    labels = _device_labels(frame["device"])
    device = labels.codes
    value = frame["value"].to_numpy(dtype=float)
    same = np.zeros(len(frame), dtype=bool)
    np.equal(device[1:], device[:-1], out=same[1:])
    step = np.zeros(len(frame))
    np.subtract(value[1:], value[:-1], out=step[1:], where=same[1:])
    # Only a fall or a step faster than max_flow_m3h over the shortest gap (1 min) can be
    # an anomaly: classify those few rows, not all 21 M (full-size temporaries are what
    # a county's meters cost).
    rows = np.flatnonzero((step < 0) | (step > max_flow_m3h * (1 / 60)))
    rows = rows[rows > 0]
    kind, counted = _classify_steps(rows, same[rows], step[rows], value[rows],
                                    value[rows - 1], frame["time"], params, max_flow_m3h)
    flagged = rows[kind > 0]
    change = step[flagged]
    step[rows] = counted  # step becomes the volume counted for each reading
    continuous = pd.DataFrame({"time": frame["time"], "device": frame["device"],
                               "value": pd.Series(step).groupby(device, sort=False)
                               .cumsum().to_numpy()})
    anomalies = pd.DataFrame({"time": frame["time"].iloc[flagged].to_numpy(),
                              "device": np.asarray(labels[flagged], dtype=object),
                              "anomaly": np.array(("", *ANOMALIES), dtype=object)[
                                  kind[kind > 0]],
                              "change_m3": change})
    anomalies["time"] = pd.to_datetime(anomalies["time"], utc=True)
    return continuous, anomalies


def _classify_steps(rows: np.ndarray, same: np.ndarray, step: np.ndarray, value: np.ndarray,
                    prev: np.ndarray, times: pd.Series, params: LeakParams,
                    max_flow_m3h: float) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly of each given row (1 + index in ANOMALIES, 0 none) and the volume it counts.

    ``rows`` index the (device, time)-sorted readings; ``same``: the previous row is the
    same device's; ``step``, ``value``, ``prev``: the raw step, reading and previous reading.
    Wraps add the modulus; a reset counts what the new register shows; a swap and a glitch
    count nothing; reverse flow counts negative.
    """
    stamps = pd.DatetimeIndex(times).as_unit("ns").asi8
    # Hours since the previous reading (Series.dt.total_seconds' arithmetic on int64 ns).
    gap_h = (stamps[rows] - stamps[rows - 1]) / 1e9 / 3600.0
    hours = np.where(same, np.maximum(gap_h, 1 / 60), 1.0)
    ceiling = max_flow_m3h * hours
    modulus = _modulus_above(prev, params.rollover_moduli_m3)
    wrapped = value + modulus - prev
    falling = same & (step < 0)
    rollover = (falling & np.isfinite(modulus) & (prev >= params.rollover_near_share * modulus)
                & (wrapped <= ceiling))
    reverse = falling & ~rollover & (-step <= params.reverse_max_m3)
    reset = falling & ~rollover & ~reverse & (value <= params.reset_max_m3)
    swap = falling & ~rollover & ~reverse & ~reset
    glitch = same & (step > ceiling)
    counted = step.copy()
    counted[rollover] = wrapped[rollover]
    counted[reset] = value[reset]
    counted[swap | glitch] = 0.0
    kind = np.zeros(len(rows), dtype=np.int8)
    for number, mask in enumerate((rollover, reset, swap, reverse, glitch), start=1):
        kind[mask] = number
    return kind, counted


def _by_device(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` sorted by device, then time (stable: equal pairs keep their order).

    Cleaned readings are time-sorted already; then a stable sort on the device codes alone
    gives the same order as sorting on both columns, at a fraction of the cost.
    """
    device = rows["device"]
    if not isinstance(device.dtype, pd.CategoricalDtype):
        return rows.sort_values(["device", "time"], kind="stable").reset_index(drop=True)
    if not device.cat.categories.is_monotonic_increasing:
        device = pd.Series(pd.Categorical(device.astype(str)), index=rows.index)
        rows = rows.assign(device=device)
    if rows["time"].is_monotonic_increasing:
        codes = device.cat.codes.to_numpy()
        if len(device.cat.categories) < 2**16:  # NumPy's stable sort is a radix sort here
            codes = codes.astype(np.uint16)
        return _take_rows(rows, np.argsort(codes, kind="stable"))
    return rows.sort_values(["device", "time"], kind="stable").reset_index(drop=True)


def _take_rows(frame: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """``frame.take(order)`` with a fresh index, taking the raw arrays (int64 times,
    category codes): DataFrame.take on 21 M rows cost seconds more."""
    columns: dict[str, object] = {}
    for name, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            stamps = pd.DatetimeIndex(column).asi8[order]
            columns[str(name)] = pd.DatetimeIndex(
                stamps.view(f"datetime64[{dtype.unit}]")).tz_localize(dtype.tz)
        elif isinstance(dtype, pd.CategoricalDtype):
            columns[str(name)] = pd.Categorical.from_codes(
                column.cat.codes.to_numpy()[order], dtype=dtype, validate=False)
        else:
            columns[str(name)] = column.take(order).to_numpy()
    return pd.DataFrame(columns)


def _device_labels(device: pd.Series) -> pd.Categorical:
    """Device ids as a categorical whose category order is the sorted order of the ids."""
    if isinstance(device.dtype, pd.CategoricalDtype) and \
            device.cat.categories.is_monotonic_increasing:
        return pd.Categorical(device)
    return pd.Categorical(device.astype(str))


def _modulus_above(values: np.ndarray, moduli: list[float]) -> np.ndarray:
    """The smallest register size above each value (inf if none)."""
    result = np.full(values.shape, np.inf)
    for modulus in sorted(moduli, reverse=True):
        result = np.where(values < modulus, modulus, result)
    return result


@dataclass(frozen=True)
class HourlyUse:
    """Per-device volume per hour: index = hour end (UTC), columns = device ids."""

    use: pd.DataFrame  # m3 in the hour; interpolated across gaps; NaN outside the data
    observed: pd.DataFrame  # bool: both ends of the hour were actual readings


def hourly_use(continuous: pd.DataFrame, grid: pd.DatetimeIndex, *,
               exact: bool = False) -> HourlyUse:
    """Volume per device and hour from continuous cumulative volumes.

    By default readings are snapped to the nearest whole hour (the nearest reading stands
    for it: a meter clock or poll a few minutes off does not matter to an hourly balance,
    and 60,000 hourly meters stay one small frame). ``exact`` interpolates in time at each
    whole hour instead, for devices read several times an hour (bulk inflow meters). Gaps
    are interpolated linearly in time, so a meter back from an outage spreads what it
    registered meanwhile over the gap.
    """
    if len(grid) < 2:
        raise ValueError("the hour grid needs at least two hours")
    empty = pd.DataFrame(index=grid[1:], dtype=float)
    if continuous.empty:
        return HourlyUse(empty, empty.astype(bool))
    if exact:
        table = continuous.pivot_table(index="time", columns="device", values="value",
                                       aggfunc="last")
        seen = table.notna().reindex(grid, fill_value=False).to_numpy(dtype=bool)
        table = table.reindex(table.index.union(grid)).interpolate(
            method="time", limit_area="inside").reindex(grid)
        devices, values = table.columns, table.to_numpy(dtype=float)
    else:
        table = _snapped_table(continuous, grid)
        devices, values = table.columns, table.to_numpy()
        seen = ~np.isnan(values)
        values = _interpolate_inside(values)
    # In numpy (DataFrame.diff's arithmetic): 360 x 60,000 frames cost a copy per step.
    columns = pd.Index(devices.astype(str)).rename(None)
    use = pd.DataFrame(values[1:] - values[:-1], index=grid[1:], columns=columns)
    both = pd.DataFrame(seen[1:] & seen[:-1], index=grid[1:], columns=columns)
    return HourlyUse(use, both)


def _snapped_table(continuous: pd.DataFrame, grid: pd.DatetimeIndex) -> pd.DataFrame:
    """Hour x device (sorted ids) table of the reading nearest each whole hour of ``grid``.

    Each reading stands for its nearest hour (``Series.dt.round``, halves to even); of
    several for one device and hour the nearest wins, the first of equally near ones in
    (device, time) order. Built on integer codes: sorting and pivoting 60,000 meters'
    hours by their ids as strings took a minute.
    """
    labels = _device_labels(continuous["device"])
    present = np.flatnonzero(np.bincount(labels.codes, minlength=len(labels.categories)))
    names = labels.categories.take(present)
    column = np.full(len(labels.categories), -1, dtype=np.int64)
    column[present] = np.arange(len(present))
    times = continuous["time"]
    hour = pd.DatetimeIndex(times.dt.round("h")).as_unit("ns").asi8
    off = np.abs(pd.DatetimeIndex(times).as_unit("ns").asi8 - hour)
    device = column[labels.codes]
    chosen = _nearest_per_hour(device, hour, off)
    if len(chosen) < len(device):
        device, hour = device[chosen], hour[chosen]
    row = _grid_rows(grid, hour)
    on_grid = row >= 0
    values = np.full((len(grid), len(names)), np.nan)
    picked = continuous["value"].to_numpy(dtype=float)
    if len(chosen) < len(picked):
        picked = picked[chosen]
    values[row[on_grid], device[on_grid]] = picked[on_grid]
    return pd.DataFrame(values, index=grid, columns=pd.Index(names, name="device"))


def _grid_rows(grid: pd.DatetimeIndex, moments: np.ndarray) -> np.ndarray:
    """Row of each moment (int64 ns) in ``grid``, -1 for a moment not on it."""
    grid_ns = grid.as_unit("ns").asi8
    if len(grid_ns) > 1 and (np.diff(grid_ns) == grid_ns[1] - grid_ns[0]).all():
        step = int(grid_ns[1] - grid_ns[0])  # a regular grid: arithmetic, no search
        offset = moments - grid_ns[0]
        row = offset // step
        on = (offset % step == 0) & (row >= 0) & (row < len(grid_ns))
        return np.where(on, row, -1)
    row = np.searchsorted(grid_ns, moments)
    inside = row < len(grid_ns)
    inside[inside] = grid_ns[row[inside]] == moments[inside]
    return np.where(inside, row, -1)


def _nearest_per_hour(device: np.ndarray, hour: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Rows kept: per (device, hour) the least ``off``, the first of ties in input order."""
    same_device = device[1:] == device[:-1]
    ascending = (device[1:] > device[:-1]) | (same_device & (hour[1:] > hour[:-1]))
    if ascending.all():  # rows in (device, time) order, one per hour: the usual case
        return np.arange(len(device))
    order = np.lexsort((off, hour, device))  # stable, as sort_values(kind="stable")
    first = np.ones(len(order), dtype=bool)
    device, hour = device[order], hour[order]
    first[1:] = (device[1:] != device[:-1]) | (hour[1:] != hour[:-1])
    return order[first]


def _interpolate_inside(values: np.ndarray) -> np.ndarray:
    """Fill each column's NaN between its first and last value linearly in row position.

    What ``DataFrame.interpolate(method="linear", limit_area="inside")`` does column by
    column (with ``np.interp``'s arithmetic, so the values are identical), for all
    columns at once.
    """
    known = ~np.isnan(values)
    count = known.sum(axis=0)
    first = np.argmax(known, axis=0)
    last = values.shape[0] - 1 - np.argmax(known[::-1], axis=0)
    gappy = np.flatnonzero((count > 0) & (count < last - first + 1))
    if not len(gappy):  # most meters have no gap inside their readings
        return values
    filled = values.copy()
    filled[:, gappy] = _interpolate_columns(values[:, gappy])
    return filled


def _interpolate_columns(values: np.ndarray) -> np.ndarray:
    """:func:`_interpolate_inside` of columns that have gaps."""
    rows = np.arange(values.shape[0], dtype=float)[:, None]
    known = ~np.isnan(values)
    before = np.where(known, rows, np.nan)
    prev_row = pd.DataFrame(before).ffill().to_numpy()
    next_row = pd.DataFrame(before).bfill().to_numpy()
    gap = ~known & np.isfinite(prev_row) & np.isfinite(next_row)
    if not gap.any():
        return values
    cols = np.nonzero(gap)[1]
    lo, hi = prev_row[gap].astype(np.int64), next_row[gap].astype(np.int64)
    low, high = values[lo, cols], values[hi, cols]
    slope = (high - low) / (hi - lo)
    filled = values.copy()
    filled[gap] = slope * (np.nonzero(gap)[0] - lo) + low
    return filled


def group_sum(frame: pd.DataFrame, group_of: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum columns by group (e.g. meters by DMA): returns (sums, count of non-NaN values).

    ``group_of`` maps column -> group; columns without a group are ignored.
    """
    columns = [c for c in frame.columns if c in group_of.index]
    groups = pd.Index(sorted(set(group_of[columns]))) if columns else pd.Index([], dtype=str)
    if not columns:
        empty = pd.DataFrame(index=frame.index, columns=groups, dtype=float)
        return empty, empty
    codes = groups.get_indexer(group_of[columns].to_numpy())
    # groups x columns; sparse @ dense adds each group's columns in column order, as the
    # sparse product of the whole frame did, without converting it to a sparse matrix.
    members = sparse.csr_matrix((np.ones(len(columns)), (codes, np.arange(len(columns)))),
                                shape=(len(groups), len(columns)))
    values = frame[columns].to_numpy(dtype=float)
    present = np.isfinite(values)
    sums = members @ np.where(present, values, 0.0).T
    counts = members @ present.T.astype(float)
    return (pd.DataFrame(sums.T, index=frame.index, columns=groups),
            pd.DataFrame(counts.T, index=frame.index, columns=groups))


# --------------------------------------------------------------------------- DMA balance


@dataclass(frozen=True)
class DmaHourly:
    """Per DMA and hour (index = hour end, UTC; columns = DMA ids), m3 in the hour."""

    inflow: pd.DataFrame
    consumption: pd.DataFrame  # household meters, scaled up for meters not covered
    coverage: pd.DataFrame  # share of the DMA's meters with a value that hour

    @property
    def losses(self) -> pd.DataFrame:
        """Non-revenue water per hour: inflow minus metered consumption, m3."""
        return self.inflow - self.consumption


def dma_hourly(inflow_use: pd.DataFrame, meter_use: pd.DataFrame, register: County,
               params: LeakParams) -> DmaHourly:
    """Hourly inflow and consumption per DMA from per-device hourly volumes.

    Parameters
    ----------
    inflow_use
        m3 per hour per DMA inflow meter (columns = inflow meter ids).
    meter_use
        m3 per hour per household meter (columns = CJ/T 188 addresses).
    """
    dmas = pd.Index([d.id for d in register.dmas])
    inflow_of = pd.Series({d.inflow_meter: d.id for d in register.dmas}, dtype=object)
    meter_dma = pd.Series({h.meter: h.dma for h in register.households}, dtype=object)
    expected = meter_dma.value_counts().reindex(dmas, fill_value=0).astype(float)
    index = meter_use.index.union(inflow_use.index)
    inflow, _ = group_sum(inflow_use.reindex(index), inflow_of)
    inflow = inflow.where(_present_mask(inflow_use.reindex(index), inflow_of)).reindex(
        columns=dmas)
    meters = meter_use.reindex(index)
    sums, counts = group_sum(meters, meter_dma)
    sums, counts = sums.reindex(columns=dmas), counts.reindex(columns=dmas).fillna(0.0)
    coverage = counts / expected.replace(0.0, np.nan)
    share = _read_share(meters, meter_dma).reindex(columns=dmas)
    scaled = sums / share.where(share > 0)
    by_count = sums * expected / counts.replace(0.0, np.nan)
    consumption = scaled.where(share.notna(), by_count).where(
        coverage >= params.min_meter_coverage)
    return DmaHourly(inflow, consumption, coverage)


def _read_share(meter_use: pd.DataFrame, meter_dma: pd.Series) -> pd.DataFrame:
    """Per hour and DMA: the share of the DMA's usual consumption its read meters make up.

    A meter's weight is its mean use over the frame (a household never read here weighs
    as the DMA's average household), so an hour missing a large household is scaled up by
    what that household usually draws, not by the average. NaN for a DMA without any
    usable weight (then the hour is scaled by the count of meters read)."""
    weight = meter_use.mean().reindex(meter_dma.index)
    average = weight.groupby(meter_dma).mean()
    weight = weight.fillna(meter_dma.map(average)).astype(float)
    total = weight.groupby(meter_dma).sum()
    known = [m for m in meter_use.columns if m in weight.index]
    read = meter_use[known].notna().astype(float) * weight[known].to_numpy()
    read_weight, _ = group_sum(read, meter_dma)
    return read_weight / total.reindex(read_weight.columns).where(lambda s: s > 0)


def _present_mask(frame: pd.DataFrame, group_of: pd.Series) -> pd.DataFrame:
    """True where every column of a group has a value (bulk meters are never scaled up)."""
    _, counts = group_sum(frame, group_of)
    needed = group_of.value_counts().reindex(counts.columns).astype(float)
    return counts >= needed


@dataclass(frozen=True)
class Excess:
    """How far a rolling window sum sits above the same hours on earlier days."""

    excess_m3h: pd.DataFrame  # window mean above baseline, m3/h
    sigma_m3h: pd.DataFrame  # robust spread of the baseline window means, m3/h
    baseline_m3h: pd.DataFrame


def window_excess(hourly: pd.DataFrame, window_h: int, params: LeakParams, *,
                  quantile: float | None = None) -> Excess:
    """Compare each ``window_h``-hour sum with the same hours on the previous days.

    ``hourly`` must sit on a regular hourly index (hour ends). The baseline is the
    ``quantile`` (default ``params.baseline_quantile``) of the same window on each of the
    previous ``params.baseline_days`` days (needs ``params.min_baseline_days`` of them);
    comparing like hours keeps the diurnal shape of apparent losses and pressure out of the
    excess.
    """
    if window_h < 1:
        raise ValueError("window_h must be at least 1")
    rolled = hourly.rolling(window_h, min_periods=window_h).sum()
    past = np.stack([rolled.shift(24 * k).to_numpy(dtype=float)
                     for k in range(1, params.baseline_days + 1)])
    counts = np.isfinite(past).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        baseline = nanquantile_first_axis(past, params.baseline_quantile if quantile is None
                                          else quantile)
        centre = np.nanmedian(past, axis=0)
        spread = _MAD_TO_SIGMA * np.nanmedian(np.abs(past - centre), axis=0)
    enough = counts >= params.min_baseline_days
    baseline = np.where(enough, baseline, np.nan)
    spread = np.where(counts >= 3, spread, 0.0)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values / window_h, index=hourly.index, columns=hourly.columns)

    return Excess(frame(rolled.to_numpy(dtype=float) - baseline), frame(spread),
                  frame(baseline))


def nanquantile_first_axis(values: np.ndarray, q: float) -> np.ndarray:
    """``np.nanquantile(values, q, axis=0)`` (linear method), vectorised.

    NumPy runs its NaN-aware quantile as a Python call per column (``apply_along_axis``):
    seconds for a county's hours x DMAs. This sorts along the axis once (NaN last) and
    interpolates with NumPy's own arithmetic (index ``(n - 1) q``, its two-sided lerp), so
    the values are the same. NaN where a column has no value.
    """
    ordered = np.sort(values, axis=0)
    count = (~np.isnan(ordered)).sum(axis=0)
    virtual = (count - 1) * np.float64(q)
    below = np.floor(virtual)
    low_index = np.clip(below, 0, None).astype(np.intp)
    high_index = np.minimum(low_index + 1, np.maximum(count - 1, 0))
    low = np.take_along_axis(ordered, low_index[None], axis=0)[0]
    high = np.take_along_axis(ordered, high_index[None], axis=0)[0]
    gamma = virtual - below
    diff = high - low
    result = np.where(gamma >= 0.5, high - diff * (1 - gamma), low + diff * gamma)
    return np.where(count > 0, result, np.nan)


def rounding_sigma(register: County, params: LeakParams, window_h: int) -> pd.Series:
    """Least noise of a DMA's metered consumption over ``window_h`` hours, m3/h per DMA.

    Every register reading is rounded to ``params.meter_resolution_m3``; a window's volume
    is the difference of two readings, so each meter adds a rounding error of variance
    resolution^2 / 6 (two independent uniform errors). Over a DMA's n meters the window
    mean is off by resolution x sqrt(n / 6) / window_h (m3/h): 0.36% of the inflow of a
    30-household DMA over 24 h, 0.12% for 300 households. The empirical spread of a short
    baseline can come out smaller than this by chance; thresholds use the larger.
    """
    counts = pd.Series(Counter(h.dma for h in register.households), dtype=float)
    counts = counts.reindex([d.id for d in register.dmas], fill_value=0.0)
    return params.meter_resolution_m3 * np.sqrt(counts / 6.0) / window_h


# --------------------------------------------------------------------------- night flow


def night_minimum(flow: pd.DataFrame, utc_offset_hours: float,
                  params: LeakParams) -> pd.DataFrame:
    """Minimum night flow per local night: index = local date, columns as ``flow``.

    ``flow`` is instantaneous or step-mean flow (m3/h), index = reading time (UTC). A
    reading stamped ``T`` covers the step ending at ``T``, so the night window is
    ``(start, end]`` local (``params.night_start_hour``, ``night_end_hour``). Nights with
    fewer than half the expected readings in the window are NaN.
    """
    if flow.empty:
        return pd.DataFrame(columns=flow.columns, dtype=float)
    stamps = local(flow.index, utc_offset_hours)
    hour = np.asarray(stamps.hour + stamps.minute / 60 + stamps.second / 3600)
    inside = (hour > params.night_start_hour) & (hour <= params.night_end_hour)
    inside |= (hour == 0) & (params.night_end_hour == 24)
    if not inside.any():
        return pd.DataFrame(columns=flow.columns, dtype=float)
    nights = flow[inside]
    dates = pd.DatetimeIndex(stamps[inside].normalize())
    grouped = nights.groupby(dates)
    minimum, counts = grouped.min(), grouped.count()
    expected = counts.max()
    return minimum.where(counts >= np.ceil(expected / 2))


def night_baseline(nightly: pd.DataFrame, params: LeakParams) -> tuple[pd.DataFrame,
                                                                        pd.DataFrame]:
    """Baseline and robust sigma of each night from the previous nights (same quantile)."""
    daily = nightly.asfreq("D") if len(nightly) else nightly
    past = np.stack([daily.shift(k).to_numpy(dtype=float)
                     for k in range(1, params.baseline_days + 1)]) if len(daily) else None
    if past is None:
        return daily, daily
    counts = np.isfinite(past).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        base = nanquantile_first_axis(past, params.baseline_quantile)
        centre = np.nanmedian(past, axis=0)
        spread = _MAD_TO_SIGMA * np.nanmedian(np.abs(past - centre), axis=0)
    base = np.where(counts >= params.min_baseline_days, base, np.nan)
    spread = np.where(counts >= 3, spread, 0.0)
    return (pd.DataFrame(base, index=daily.index, columns=daily.columns),
            pd.DataFrame(spread, index=daily.index, columns=daily.columns))


# --------------------------------------------------------------------------- detection


def dma_place(register: County, dma: Dma) -> Place:
    township = next((v.township for v in register.villages if v.id == dma.village), None)
    return Place(township=township, village=dma.village, scheme=dma.village, dma=dma.id,
                 device=dma.inflow_meter)


def _run_start(condition: pd.Series) -> pd.Timestamp | None:
    """The first index of the run of True values that ends at the last index."""
    values = condition.to_numpy(dtype=bool)
    if not len(values) or not values[-1]:
        return None
    falses = np.flatnonzero(~values)
    first = falses[-1] + 1 if len(falses) else 0
    return pd.Timestamp(condition.index[first])


def _last_fresh(frame: pd.DataFrame, column: str, now: pd.Timestamp,
                max_age: pd.Timedelta) -> pd.Timestamp | None:
    values = frame[column].dropna() if column in frame.columns else pd.Series(dtype=float)
    if values.empty:
        return None
    last = pd.Timestamp(values.index[-1])
    return last if now - last <= max_age else None


def detect_network_leaks(hourly: DmaHourly, nightly: pd.DataFrame, register: County,
                         params: LeakParams, now: datetime
                         ) -> tuple[list[Finding], set[str]]:
    """Bursts and sustained leaks per DMA, as of ``now``.

    Losses are inflow minus metered consumption (m3/h). Each test compares a window of
    losses with the same hours on earlier days (:func:`window_excess`) and needs the excess
    above both a share of the DMA's mean inflow and ``noise_sigmas`` times the DMA's own
    noise: the robust spread of the baseline windows, and at least the rounding noise of
    its meters (:func:`rounding_sigma`), so thresholds scale with each DMA.

    A **burst** is an excess over the last ``burst_window_h`` hours (against the median of
    earlier days) of at least ``burst_share`` of mean inflow. A **leak** (kind
    ``night_flow``) is an excess over the last ``sustained_window_h`` hours of at least
    ``leak_share`` of mean inflow, still present over the last ``recent_window_h`` hours;
    or the latest minimum night flow ``night_flow_share`` of mean inflow (and
    ``noise_sigmas`` robust sigmas of the earlier nights) above its baseline while the
    losses over ``recent_window_h`` are up by ``leak_share``: a customer-side leak, a
    weekend or a night of more use raises the night flow but not the losses, which
    subtract what the household meters registered. Once flagged, a leak holds while the
    sustained excess stays above half its threshold (hysteresis). No leak verdict while
    consumption surges (the balance then mixes in meter under-registration). A burst that
    held two hours stays the finding for ``recent_window_h + burst_window_h`` hours after
    its last hour over the threshold; after that only losses after it count toward a leak.

    Returns the findings and the DMA ids that could be evaluated.
    """
    stamp = pd.Timestamp(now)
    losses = hourly.losses
    # A burst is a step against the median: a low quantile would add ~0.7 sigma of the
    # noisy 3-hour windows to every excess and turn a steady leak's noise into "bursts".
    tests = {name: (window_excess(losses, window_h, params, quantile=quantile),
                    rounding_sigma(register, params, window_h))
             for name, window_h, quantile in (("burst", params.burst_window_h, 0.5),
                                              ("sustained", params.sustained_window_h, None),
                                              ("recent", params.recent_window_h, None))}
    use_excess = window_excess(hourly.consumption, params.recent_window_h, params)
    night = night_rise(nightly, params)
    findings: list[Finding] = []
    evaluated: set[str] = set()
    for dma in register.dmas:
        at = _last_fresh(losses, dma.id, stamp, pd.Timedelta(hours=3))
        if at is None:
            continue
        mean_inflow = float(hourly.inflow[dma.id].mean())
        if not np.isfinite(mean_inflow) or mean_inflow <= 0:
            continue
        evaluated.add(dma.id)
        burst = tests["burst"][0]
        is_burst = burst.excess_m3h[dma.id] >= _threshold(
            *tests["burst"], dma.id, params.burst_share * mean_inflow, params)
        window = SeriesWindow(measurement="dma_inflow", fields=["flow_m3h", "volume_m3"],
                              tags={"dma": dma.id}, start=_utc(at - pd.Timedelta(days=2)),
                              end=_utc(at))
        # A burst that held two hours stays the alert for recent_window_h + burst_window_h
        # hours after it (the leak test then sees a window clear of it); a single hour over
        # the threshold is reported while it lasts but silences nothing.
        held = is_burst & is_burst.shift(1, fill_value=False)
        recent_held = held[at - pd.Timedelta(hours=params.recent_window_h
                                             + params.burst_window_h):at]
        if bool(is_burst.get(at, False)) or bool(recent_held.any()):
            peak = at if bool(is_burst.get(at, False)) else recent_held[recent_held].index[-1]
            findings.append(_burst_finding(register, dma, burst, is_burst, peak, mean_inflow,
                                           window))
            continue
        after_burst = bool(held[at - pd.Timedelta(hours=params.sustained_window_h
                                                  + params.burst_window_h):at].any())
        surge = use_excess.excess_m3h[dma.id].get(at, np.nan)
        baseline_use = use_excess.baseline_m3h[dma.id].get(at, np.nan)
        if (np.isfinite(surge) and np.isfinite(baseline_use)
                and surge > params.demand_surge_guard * baseline_use):
            continue
        finding = _leak_finding(register, dma, tests, night, at, mean_inflow, params, window,
                                after_burst=after_burst)
        if finding is not None:
            findings.append(finding)
    return findings, evaluated


def _threshold(excess: Excess, noise_floor: pd.Series, dma: str, floor_m3h: float,
               params: LeakParams) -> pd.Series:
    """Per hour: the larger of ``floor_m3h`` and ``noise_sigmas`` x the DMA's noise (m3/h)."""
    sigma = np.maximum(excess.sigma_m3h[dma], float(noise_floor.get(dma, 0.0)))
    return np.maximum(floor_m3h, params.noise_sigmas * sigma)


def _burst_finding(register: County, dma: Dma, burst: Excess, is_burst: pd.Series,
                   at: pd.Timestamp, mean_inflow: float, window: SeriesWindow) -> Finding:
    excess = float(burst.excess_m3h[dma.id][at])
    start = _run_start(is_burst[:at]) or at
    share = excess / mean_inflow
    return Finding(
        kind=AlertKind.BURST, subject=dma.id,
        severity=Severity.CRITICAL if share >= 0.5 else Severity.HIGH,
        title=f"Burst in {dma.id}: losses up {excess:.2f} m3/h ({share:.0%} of inflow)",
        place=dma_place(register, dma), started_at=_utc(start - pd.Timedelta(hours=1)),
        evidence={"excess_loss_m3h": round(excess, 4), "share_of_mean_inflow": round(share, 4),
                  "mean_inflow_m3h": round(mean_inflow, 4),
                  "baseline_loss_m3h": round(float(burst.baseline_m3h[dma.id][at]), 4)},
        window=window)


@dataclass(frozen=True)
class NightRise:
    """Per local night and DMA: minimum night flow, its baseline and the rise (m3/h)."""

    flow: pd.DataFrame
    baseline: pd.DataFrame
    rise: pd.DataFrame  # flow above baseline
    sigma: pd.DataFrame  # robust spread of the earlier nights' minimum night flow
    history: pd.DataFrame  # how many earlier nights the baseline saw


def night_rise(nightly: pd.DataFrame, params: LeakParams) -> NightRise:
    """Each night's minimum night flow against the earlier nights (:func:`night_baseline`)."""
    base, sigma = night_baseline(nightly, params)
    flow = nightly.reindex(base.index)
    known = flow.notna().astype(float)
    history = sum((known.shift(k, fill_value=0.0) for k in range(1, params.baseline_days + 1)),
                  start=pd.DataFrame(0.0, index=known.index, columns=known.columns))
    return NightRise(flow, base, flow - base, sigma, history)


_Tests = dict[str, tuple[Excess, pd.Series]]


def _leak_finding(register: County, dma: Dma, tests: _Tests, night: NightRise,
                  at: pd.Timestamp, mean_inflow: float, params: LeakParams,
                  window: SeriesWindow, *, after_burst: bool = False) -> Finding | None:
    """A sustained leak; just after a burst only the recent window (after it) counts."""
    floor = params.leak_share * mean_inflow
    sustained, sustained_noise = tests["sustained"]
    recent, recent_noise = tests["recent"]
    if after_burst:
        sustained, sustained_noise = recent, recent_noise
    threshold = _threshold(sustained, sustained_noise, dma.id, floor, params)
    excess_series = sustained.excess_m3h[dma.id]
    recent_excess = recent.excess_m3h[dma.id]
    strict = (excess_series >= threshold) & (recent_excess >= floor)
    hold = (excess_series >= threshold / 2)[:at]
    run_start = _run_start(hold)
    leaking = run_start is not None and bool(strict[run_start:at].any())
    excess = float(excess_series.get(at, np.nan))
    night_flow = night_base = rise = np.nan
    night_leak = False
    latest = _latest_night(night, dma.id, at, register.utc_offset_hours, params)
    if latest is not None:
        rise = float(night.rise[dma.id][latest])
        night_flow = float(night.flow[dma.id][latest])
        night_base = float(night.baseline[dma.id][latest])
        night_threshold = max(params.night_flow_share * mean_inflow,
                              params.noise_sigmas * float(night.sigma[dma.id][latest]))
        night_leak = (rise >= night_threshold and not after_burst
                      and float(recent_excess.get(at, np.nan)) >= floor)
    if not leaking and not night_leak:
        return None
    started = (run_start - pd.Timedelta(hours=1) if leaking and run_start is not None
               else at - pd.Timedelta(hours=24))
    size = excess if leaking and np.isfinite(excess) else rise
    share = size / mean_inflow
    evidence: Evidence = {
                "excess_loss_m3h": _round(excess), "share_of_mean_inflow": _round(share),
                "mean_inflow_m3h": round(mean_inflow, 4),
                "threshold_m3h": _round(float(threshold.get(at, np.nan))),
                "night_flow_m3h": _round(night_flow), "night_baseline_m3h": _round(night_base),
                "night_rise_m3h": _round(rise)}
    return Finding(
        kind=AlertKind.NIGHT_FLOW, subject=dma.id,
        severity=Severity.HIGH if share >= 0.1 else Severity.MEDIUM,
        title=f"Leak in {dma.id}: losses up {size:.2f} m3/h ({share:.0%} of inflow)",
        place=dma_place(register, dma), started_at=_utc(started), evidence=evidence,
        window=window)


def _latest_night(night: NightRise, dma: str, at: pd.Timestamp, utc_offset_hours: float,
                  params: LeakParams) -> pd.Timestamp | None:
    """The local date of the DMA's last complete night if it ended within a day of ``at``
    and had ``min_night_history`` earlier nights behind its baseline."""
    if dma not in night.rise.columns:
        return None
    rises = night.rise[dma].dropna()
    if rises.empty:
        return None
    last = pd.Timestamp(rises.index[-1])
    if float(night.history[dma][last]) < params.min_night_history:
        return None
    ended = (last + pd.Timedelta(hours=params.night_end_hour - utc_offset_hours)).tz_localize(
        "UTC")
    return last if pd.Timedelta(0) <= at - ended <= pd.Timedelta(hours=30) else None


def _utc(moment: pd.Timestamp) -> datetime:
    """A whole-second aware datetime (pandas keeps nanoseconds a datetime cannot)."""
    return pd.Timestamp(moment).floor("s").to_pydatetime()


def _round(value: float, digits: int = 4) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def detect_customer_leaks(meter_use: HourlyUse, register: County, params: LeakParams,
                          now: datetime) -> tuple[list[Finding], set[str]]:
    """Household meters that never go idle in the quiet hours of the night.

    Quiet hours are local ``customer_night_hours``. A household is leaking when its last
    ``customer_quiet_hours`` or more quiet hours that were actually read (hours interpolated
    across a gap are skipped: they neither count nor break the run) each registered more
    than ``customer_idle_m3``, and their mean flow reached ``customer_min_flow_m3h`` and
    ``customer_night_day_ratio`` of the household's mean flow over the 24 h to the last
    quiet hour, and ``customer_peer_ratio_multiple`` times that ratio for the rest of its
    DMA. Ordinary night use is about a fifth of a household's daily mean flow however much
    it draws (a large family, a dry-summer surge: day and night scale together, and when a
    village starts drawing more at night all its households do); the continuous flow of a
    leak brings the ratio near one. Counting hours
    rather than whole nights finds a leak that starts within a night by the end of the
    next one. Subjects are household ids; a household is judged when a quiet hour of the
    last day was read.
    """
    use, observed = meter_use.use, meter_use.observed
    if use.empty:
        return [], set()
    start_h, end_h = params.customer_night_hours
    hour_start = local(use.index - pd.Timedelta(hours=1), register.utc_offset_hours)
    in_night = np.asarray((hour_start.hour >= start_h) & (hour_start.hour < end_h))
    if not in_night.any():
        return [], set()
    households = {h.meter: h for h in register.households}
    meters = [m for m in use.columns if m in households]
    quiet = use.loc[in_night, meters]
    read = observed.loc[in_night, meters].to_numpy(dtype=bool) & quiet.notna().to_numpy()
    values = np.where(read, quiet.to_numpy(dtype=float), np.nan)
    recent = (quiet.index > pd.Timestamp(now) - pd.Timedelta(hours=24))[:, None]
    judged = (read & recent).any(axis=0)
    evaluated = {households[m].id for m, ok in zip(meters, judged, strict=True) if ok}
    run_hours, run_mean, run_first = _busy_runs(values, params.customer_idle_m3)
    day = use[meters].loc[quiet.index[-1] - pd.Timedelta(hours=23):quiet.index[-1]]
    day_flow = day.mean().to_numpy(dtype=float)  # m3/h over the day to the last quiet hour
    peer_ratio = _peer_night_day_ratio(values[recent[:, 0]], day_flow,
                                       [households[m].dma for m in meters])
    township = {v.id: v.township for v in register.villages}
    findings: list[Finding] = []
    for m in np.flatnonzero(judged & (run_hours >= params.customer_quiet_hours)):
        household = households[meters[m]]
        needed = params.customer_min_flow_m3h
        ratio = run_mean[m] / day_flow[m] if day_flow[m] > 0 else np.nan
        needed_ratio = max(params.customer_night_day_ratio,
                           params.customer_peer_ratio_multiple * np.nan_to_num(peer_ratio[m]))
        if run_mean[m] < needed or not ratio >= needed_ratio:
            continue
        started = _utc(pd.Timestamp(quiet.index[run_first[m]]) - pd.Timedelta(hours=1))
        flow = float(run_mean[m])
        findings.append(Finding(
            kind=AlertKind.CUSTOMER_LEAK, subject=household.id,
            severity=Severity.HIGH if household.monitored else Severity.MEDIUM,
            title=f"Household {household.id}: meter never idle at night ({flow * 1000:.0f} L/h)",
            place=Place(township=township.get(household.village), village=household.village,
                        scheme=household.village, dma=household.dma, branch=household.branch,
                        device=household.meter, household=household.id,
                        monitored=household.monitored),
            started_at=started,
            evidence={"night_flow_m3h": round(flow, 4),
                      "quiet_hours_never_idle": int(run_hours[m]),
                      "min_night_flow_m3h": round(needed, 4),
                      "day_flow_m3h": _round(float(day_flow[m])),
                      "night_day_ratio": _round(float(ratio), 3),
                      "dma_night_day_ratio": _round(float(peer_ratio[m]), 3)},
            window=SeriesWindow(measurement="meter", fields=["volume_m3"],
                                tags={"device": household.meter},
                                start=started, end=_utc(pd.Timestamp(now)))))
    return findings, evaluated


def _peer_night_day_ratio(night: np.ndarray, day_flow: np.ndarray,
                          dmas: list[str]) -> np.ndarray:
    """Per household: the rest of its DMA's quiet-hour flow over their daily mean flow.

    ``night``: the last day's quiet-hour volumes (rows; NaN = not read), ``day_flow``: each
    household's mean flow over the day (m3/h). Households lacking either are left out; NaN
    where no other household remains. Leaving the household out keeps a leak from raising
    its own yardstick."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        night_flow = np.nanmean(night, axis=0) if len(night) else np.full(len(dmas), np.nan)
    usable = np.isfinite(night_flow) & np.isfinite(day_flow)
    frame = pd.DataFrame({"dma": dmas, "night": np.where(usable, night_flow, 0.0),
                          "day": np.where(usable, day_flow, 0.0)})
    totals = frame.groupby("dma")[["night", "day"]].transform("sum")
    rest_day = (totals["day"] - frame["day"]).to_numpy()
    rest_night = (totals["night"] - frame["night"]).to_numpy()
    return np.divide(rest_night, rest_day, out=np.full(len(dmas), np.nan), where=rest_day > 0)


def _busy_runs(values: np.ndarray, idle_m3: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of quiet-hour volumes (NaN = not read): the run of busy hours since the
    last idle one: (hours in it, their mean volume per hour, row of its first hour)."""
    rows = np.arange(values.shape[0])[:, None]
    idle = values <= idle_m3  # NaN compares False: unread hours do not break a run
    last_idle = np.where(idle, rows, -1).max(axis=0)
    after = rows > last_idle
    busy = after & (values > idle_m3)
    hours = busy.sum(axis=0)
    total = np.where(busy, values, 0.0).sum(axis=0)
    mean = np.divide(total, hours, out=np.zeros(total.shape), where=hours > 0)
    first = np.where(busy, rows, values.shape[0]).min(axis=0)
    return hours, mean, np.minimum(first, values.shape[0] - 1)


def _dma_daily(hourly: pd.DataFrame, utc_offset_hours: float) -> pd.DataFrame:
    """Sum hour volumes by local day (index = local date); days missing hours are NaN."""
    if hourly.empty:
        return hourly
    dates = pd.DatetimeIndex(local(hourly.index - pd.Timedelta(hours=1),
                                   utc_offset_hours).normalize())
    grouped = hourly.groupby(dates)
    return grouped.sum(min_count=1).where(grouped.count() >= 24)


def dma_kpis(hourly: DmaHourly, nightly: pd.DataFrame, register: County,
             params: LeakParams) -> pd.DataFrame:
    """Per DMA and complete local day: the balance and the IWA/CJJ 92 KPIs.

    Columns: dma, village, day (local date), inflow_m3, consumption_m3, nrw_m3, nrw_pct,
    real_loss_m3 (NRW less ``apparent_loss_share`` of consumption),
    litres_per_connection_day and ili (real losses over the unavoidable annual real losses
    (18 x mains km + 0.8 x connections + 25 x private-pipe km) x pressure m; mains length
    is the DMA's mains plus its branch lines), night_flow_m3h, night_baseline_m3h.
    """
    inflow = _dma_daily(hourly.inflow, register.utc_offset_hours)
    consumption = _dma_daily(hourly.consumption, register.utc_offset_hours)
    base, _ = night_baseline(nightly, params)
    columns = ["dma", "village", "day", "inflow_m3", "consumption_m3", "nrw_m3", "nrw_pct",
               "real_loss_m3", "litres_per_connection_day", "ili", "night_flow_m3h",
               "night_baseline_m3h"]
    dmas = [dma for dma in register.dmas if dma.id in inflow.columns]
    if not dmas:
        return pd.DataFrame(columns=columns)
    # All DMAs at once (days x DMAs arrays, then DMA-major rows): the same element-wise
    # arithmetic as a frame per DMA, without 200 small frames.
    ids = [dma.id for dma in dmas]
    days = inflow.index.union(consumption.index)

    def table(frame: pd.DataFrame) -> np.ndarray:
        return frame.reindex(index=days, columns=ids).to_numpy(dtype=float).T.ravel()

    inflow_m3, consumption_m3 = table(inflow), table(consumption)
    keep = ~np.isnan(inflow_m3) & ~np.isnan(consumption_m3)
    if not keep.any():
        return pd.DataFrame(columns=columns)
    inflow_m3, consumption_m3 = inflow_m3[keep], consumption_m3[keep]
    per_dma = np.repeat(np.arange(len(dmas)), len(days))[keep]
    connections = np.array([max(dma.connections, 1) for dma in dmas])[per_dma]
    uarl_l = np.array([_uarl_l(dma, params) for dma in dmas])[per_dma]
    nrw = inflow_m3 - consumption_m3
    real = nrw - params.apparent_loss_share * consumption_m3
    with np.errstate(divide="ignore", invalid="ignore"):
        ili = np.where(uarl_l > 0, 1000 * real / uarl_l, np.nan)
    day_index = np.tile(np.arange(len(days)), len(dmas))[keep]
    return pd.DataFrame({
        "dma": np.array(ids, dtype=object)[per_dma],
        "village": np.array([dma.village for dma in dmas], dtype=object)[per_dma],
        "day": np.asarray(days.date, dtype=object)[day_index],
        "inflow_m3": inflow_m3, "consumption_m3": consumption_m3, "nrw_m3": nrw,
        "nrw_pct": 100 * nrw / np.where(inflow_m3 > 0, inflow_m3, np.nan),
        "real_loss_m3": real, "litres_per_connection_day": 1000 * real / connections,
        "ili": ili, "night_flow_m3h": table(nightly)[keep] if len(nightly.columns) else np.nan,
        "night_baseline_m3h": table(base)[keep] if len(base.columns) else np.nan,
    })[columns]


def _uarl_l(dma: Dma, params: LeakParams) -> float:
    """Unavoidable annual real losses of a DMA per day, litres (IWA: 18 x mains km +
    0.8 x connections + 25 x private-pipe km, times pressure m)."""
    mains_km = dma.mains_km + sum(b.length_km for b in dma.branches)
    return (18 * mains_km + 0.8 * dma.connections + 25 * dma.connections
            * params.private_pipe_km_per_connection) * dma.avg_pressure_m


def detect_water_balance(kpis: pd.DataFrame, register: County, params: LeakParams
                         ) -> tuple[list[Finding], set[str]]:
    """DMAs whose real losses over the last ``nrw_window_days`` days exceed the CJJ 92 grade.

    A chronic condition, not an incident: real losses (NRW less apparent losses) as a share
    of inflow above ``nrw_grade_share``.
    """
    findings: list[Finding] = []
    evaluated: set[str] = set()
    if kpis.empty:
        return findings, evaluated
    dmas = {d.id: d for d in register.dmas}
    for dma_id, days in kpis.groupby("dma"):
        recent = days.dropna(subset=["inflow_m3", "consumption_m3"]).tail(params.nrw_window_days)
        if len(recent) < min(params.nrw_window_days, 2):
            continue
        evaluated.add(str(dma_id))
        inflow = float(recent["inflow_m3"].sum())
        real = float(recent["real_loss_m3"].sum())
        share = real / inflow if inflow > 0 else 0.0
        if share < params.nrw_grade_share:
            continue
        dma = dmas[str(dma_id)]
        first_day = pd.Timestamp(recent["day"].iloc[0])
        started = (first_day - pd.Timedelta(hours=register.utc_offset_hours)).tz_localize("UTC")
        findings.append(Finding(
            kind=AlertKind.WATER_BALANCE, subject=dma.id,
            severity=Severity.MEDIUM if share >= 1.5 * params.nrw_grade_share else Severity.LOW,
            title=f"{dma.id}: real losses {share:.0%} of supply over {len(recent)} days "
                  f"(grade {params.nrw_grade_share:.0%})",
            place=dma_place(register, dma), started_at=_utc(started),
            evidence={"real_loss_share": round(share, 4), "days": len(recent),
                      "inflow_m3": round(inflow, 2), "real_loss_m3": round(real, 2),
                      "nrw_pct": round(100 * float(recent["nrw_m3"].sum()) / inflow, 2)
                      if inflow > 0 else None,
                      "ili": _round(float(recent["ili"].mean()), 2)}))
    return findings, evaluated
