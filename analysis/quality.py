"""Water quality: GB 5749 limit breaches, CANARY-style events below the limits, sensor faults.

Pure functions on pandas objects; the long readings format is ``analysis.readings``. Units
are those of ``common.schema.FIELDS["quality"]``: turbidity NTU, free chlorine mg/L, pH,
conductivity uS/cm, temperature C. One series per analyser and parameter, in reading order.

- **Limit breaches** (QUALITY_LIMIT, subject ``<analyser>:<parameter>``): flagged at the
  first reading beyond the site's limit (scheme outlet or household tap, per
  ``QualityParams.limits``; per-analyser overrides; the higher turbidity limit for schemes
  limited by source or treatment), open until ``breach_hold_readings`` readings comply.
  Readings outside the instrument's range are the sensor's fault, not the water's.
- **Events** (QUALITY_EVENT, subject ``<analyser>``), after EPA's CANARY: a baseline
  prediction per parameter (the median of the previous ``baseline_readings`` readings), an
  outlier where the residual exceeds ``outlier_sigmas`` robust sigmas (1.4826 x the median
  absolute residual of the previous readings, floored at ``min_sigma``), and an event when
  the binomial event discriminator over the last ``event_window_readings`` readings says
  more outliers came than ``outlier_probability`` explains, at ``event_probability``.
- **Sensor faults** (SENSOR_FAULT, subject ``<analyser>:<parameter>``): a flatline
  (``flatline_readings`` identical readings), readings out of the instrument's range, or
  drift: a steady linear change of at least ``drift_limits[parameter]`` over
  ``drift_window_days`` (r2 >= ``drift_min_r2``), measured against the paired site of the
  same scheme where one reports the parameter (the water's own changes then cancel out).
  Events are not judged on a faulty parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import stats

from analysis.findings import Finding
from analysis.params import Limit, QualityParams
from common.alerts import AlertKind, Evidence, Place, SeriesWindow, Severity
from common.register import Analyser, County

_MAD_TO_SIGMA = 1.4826
KINDS = (AlertKind.QUALITY_LIMIT, AlertKind.QUALITY_EVENT, AlertKind.SENSOR_FAULT)


def site_limit(analyser: Analyser, parameter: str, params: QualityParams) -> Limit | None:
    """The GB 5749 limit watched for ``parameter`` at ``analyser``'s site, if any."""
    override = params.analyser_limits.get(analyser.id, {}).get(parameter)
    if override is not None:
        return override
    limit = params.limits.get(analyser.site, {}).get(parameter)
    if (limit is not None and parameter == "turbidity_ntu"
            and analyser.village in params.source_limited_schemes):
        return Limit(minimum=limit.minimum, maximum=params.source_limited_turbidity_ntu)
    return limit


def _outside(values: np.ndarray, limit: Limit | None) -> np.ndarray:
    """True where a value is below the limit's minimum or above its maximum."""
    outside = np.zeros(values.shape, dtype=bool)
    if limit is None:
        return outside
    if limit.minimum is not None:
        outside |= values < limit.minimum
    if limit.maximum is not None:
        outside |= values > limit.maximum
    return outside


@dataclass(frozen=True)
class Breach:
    """The breach open at the last reading of a series."""

    started_at: pd.Timestamp  # first reading beyond the limit in this breach
    readings: int  # readings beyond the limit since then
    worst: float
    last: float


def open_breach(values: pd.Series, limit: Limit | None, hold: int) -> Breach | None:
    """The breach still open at the end of ``values`` (index = time), or None.

    A breach opens at the first reading beyond ``limit`` and stays open until ``hold``
    consecutive readings comply."""
    if limit is None or values.empty:
        return None
    beyond = _outside(values.to_numpy(dtype=float), limit)
    if not beyond[-hold:].any():
        return None
    start = _episode_start(beyond, hold)
    flagged = values.iloc[start:][beyond[start:]]
    numbers = flagged.to_numpy(dtype=float)
    distance = np.maximum(
        limit.minimum - numbers if limit.minimum is not None else -np.inf,
        numbers - limit.maximum if limit.maximum is not None else -np.inf)
    return Breach(started_at=pd.Timestamp(flagged.index[0]), readings=len(flagged),
                  worst=float(numbers[int(np.argmax(distance))]),
                  last=float(values.iloc[-1]))


def _episode_start(beyond: np.ndarray, hold: int) -> int:
    """Index of the first breach after the last run of ``hold`` compliant readings."""
    run = 0
    start = len(beyond) - 1
    for index in range(len(beyond) - 1, -1, -1):
        if beyond[index]:
            start, run = index, 0
        else:
            run += 1
            if run >= hold:
                break
    return start


# --------------------------------------------------------------------------- sensor faults


@dataclass(frozen=True)
class SensorFault:
    """Why a parameter's readings are the sensor's, not the water's."""

    fault: str  # flatline, out_of_range or drift
    started_at: pd.Timestamp
    evidence: Evidence


def flatline(values: pd.Series, readings: int) -> SensorFault | None:
    """The last ``readings`` values all identical (zero variance): a stuck sensor."""
    tail = values.iloc[-readings:]
    if len(tail) < readings or float(tail.max()) != float(tail.min()):
        return None
    numbers = values.to_numpy(dtype=float)
    differs = np.flatnonzero(numbers != numbers[-1])
    first = int(differs[-1]) + 1 if len(differs) else 0
    return SensorFault("flatline", pd.Timestamp(values.index[first]),
                       {"value": float(numbers[-1]), "identical_readings": len(numbers) - first})


def out_of_range(values: pd.Series, valid: Limit | None, hold: int) -> SensorFault | None:
    """A reading outside the instrument's range among the last ``hold``."""
    breach = open_breach(values, valid, hold)
    if breach is None:
        return None
    return SensorFault("out_of_range", breach.started_at,
                       {"value": breach.last, "readings_out_of_range": breach.readings,
                        "range_min": valid.minimum if valid else None,
                        "range_max": valid.maximum if valid else None})


def drift(values: pd.Series, paired: pd.Series | None, end: pd.Timestamp, limit: float,
          params: QualityParams) -> SensorFault | None:
    """A steady linear change of at least ``limit`` over the drift window (hourly means).

    With a paired site reporting the same parameter, the change is that of the difference
    between the two (the water's own changes cancel out), and the sensor blamed is the one
    whose own series moves that way by at least half the limit (the difference alone
    cannot tell which of the two drifts)."""
    start = end - pd.Timedelta(days=params.drift_window_days)
    hourly = values[values.index > start].resample("h").mean().dropna()
    own = _line(hourly, end, params)
    if own is None:
        return None
    change, r2 = own
    against = "itself"
    if paired is not None and not paired.empty:
        other = paired[paired.index > start].resample("h").mean()
        difference = _line((hourly - other.reindex(hourly.index)).dropna(), end, params)
        if difference is None:
            return None
        if abs(change) < limit / 2 or np.sign(change) != np.sign(difference[0]):
            return None
        change, r2 = difference
        against = "paired site"
    if abs(change) < limit or r2 < params.drift_min_r2:
        return None
    return SensorFault("drift", pd.Timestamp(hourly.index[0]),
                       {"change_over_window": round(change, 4), "r2": round(r2, 3),
                        "window_days": params.drift_window_days, "against": against})


def _line(hourly: pd.Series, end: pd.Timestamp,
          params: QualityParams) -> tuple[float, float] | None:
    """(change over the drift window, r2) of a least-squares line, or None if too short."""
    if len(hourly) < 12:
        return None
    days = ((hourly.index - end) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    if days.max() - days.min() < params.drift_min_span_days:
        return None
    fit = stats.linregress(days, hourly.to_numpy(dtype=float))
    return float(fit.slope) * params.drift_window_days, float(fit.rvalue) ** 2


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Outliers:
    """Per reading of the tail that could be judged: residual, sigma, outlier flag."""

    residual: pd.Series
    sigma: pd.Series
    outlier: pd.Series  # bool


def outliers(values: pd.Series, params: QualityParams, min_sigma: float) -> Outliers:
    """Residuals against a moving-median prediction and the outliers among them.

    The prediction of each reading is the median of the ``baseline_readings`` before it;
    its sigma 1.4826 x the median absolute residual of those readings (at least
    ``min_sigma``). Medians, not means: an outlier does not drag the baseline with it."""
    window = params.baseline_readings
    prediction = values.rolling(window, min_periods=window // 2).median().shift(1)
    residual = values - prediction
    spread = residual.abs().rolling(window, min_periods=window // 2).median().shift(1)
    sigma = (_MAD_TO_SIGMA * spread).clip(lower=min_sigma)
    judged = residual.notna() & sigma.notna()
    flag = (residual.abs() > params.outlier_sigmas * sigma) & judged
    return Outliers(residual[judged], sigma[judged], flag[judged])


def event_probability(outlier_count: int, window: int, params: QualityParams) -> float:
    """CANARY's binomial event discriminator: the probability that normal water would give
    fewer outliers than ``outlier_count`` in ``window`` readings."""
    if outlier_count <= 0:
        return 0.0
    return float(stats.binom.cdf(outlier_count - 1, window, params.outlier_probability))


def min_event_outliers(params: QualityParams) -> int:
    """The fewest outliers in an event window that the discriminator calls an event."""
    window = params.event_window_readings
    for count in range(1, window + 1):
        if event_probability(count, window, params) >= params.event_probability:
            return count
    return window + 1


def event_run(outlier: pd.Series, params: QualityParams) -> pd.Timestamp | None:
    """When the event going on at the last reading began (its first outlier), or None.

    The event state of each reading is the discriminator over the window ending there."""
    window = params.event_window_readings
    counts = outlier.astype(float).rolling(window, min_periods=window).sum().to_numpy()
    state = counts >= min_event_outliers(params)
    if not len(state) or not state[-1]:
        return None
    calm = np.flatnonzero(~state)
    first_event = int(calm[-1]) + 1 if len(calm) else 0
    flags = outlier.to_numpy(dtype=bool)
    begin = max(first_event - window + 1, 0)
    first_outlier = begin + int(np.argmax(flags[begin:first_event + 1]))
    return pd.Timestamp(outlier.index[first_outlier])


# --------------------------------------------------------------------------- the detector


def _place(register: County, analyser: Analyser) -> Place:
    township = next((v.township for v in register.villages if v.id == analyser.village), None)
    dma = next((d.id for d in register.dmas if d.village == analyser.village), None)
    return Place(township=township, village=analyser.village, scheme=analyser.village,
                 dma=dma, device=analyser.id)


def _window(analyser: Analyser, fields: list[str], start: pd.Timestamp,
            end: pd.Timestamp) -> SeriesWindow:
    return SeriesWindow(measurement="quality", fields=fields, tags={"device": analyser.id},
                        start=_utc(start), end=_utc(end))


def _utc(moment: pd.Timestamp) -> datetime:
    return pd.Timestamp(moment).floor("s").to_pydatetime()


def detect_quality(readings: pd.DataFrame, register: County, params: QualityParams,
                   now: datetime) -> tuple[list[Finding], dict[AlertKind, set[str]]]:
    """Limit breaches, events and sensor faults of every analyser, as of ``now``.

    ``readings``: cleaned long readings (``analysis.readings.clean``). Returns the findings
    and, per kind in ``KINDS``, the subjects judged (an analyser with readings in the data;
    events need ``baseline_readings`` of history).
    """
    stamp = pd.Timestamp(now)
    rows = readings[readings["kind"] == "quality"]
    by_series = {key: group.set_index("time")["value"].sort_index()
                 for key, group in rows.groupby(["device", "field"], sort=False)}
    findings: list[Finding] = []
    evaluated: dict[AlertKind, set[str]] = {kind: set() for kind in KINDS}
    for analyser in register.analysers:
        found, judged = _analyser(analyser, register, by_series, stamp, params)
        findings.extend(found)
        for kind, subjects in judged.items():
            evaluated[kind] |= subjects
    return findings, evaluated


def _paired(analyser: Analyser, register: County, parameter: str,
            by_series: dict[tuple[str, str], pd.Series]) -> pd.Series | None:
    for other in register.analysers:
        if (other.village == analyser.village and other.id != analyser.id
                and (other.id, parameter) in by_series):
            return by_series[(other.id, parameter)]
    return None


def _analyser(analyser: Analyser, register: County,
              by_series: dict[tuple[str, str], pd.Series], now: pd.Timestamp,
              params: QualityParams) -> tuple[list[Finding], dict[AlertKind, set[str]]]:
    findings: list[Finding] = []
    judged: dict[AlertKind, set[str]] = {kind: set() for kind in KINDS}
    place = _place(register, analyser)
    event_parts: list[tuple[str, pd.Timestamp, Evidence]] = []
    event_judged = False
    for parameter in analyser.parameters:
        values = by_series.get((analyser.id, parameter))
        if values is None or values.empty:
            continue
        subject = f"{analyser.id}:{parameter}"
        judged[AlertKind.QUALITY_LIMIT].add(subject)
        judged[AlertKind.SENSOR_FAULT].add(subject)
        valid = params.valid_ranges.get(parameter)
        in_range = values[~_outside(values.to_numpy(dtype=float), valid)]
        fault = _sensor_fault(analyser, register, parameter, values, valid, by_series, now,
                              params)
        if fault is not None:
            findings.append(_fault_finding(analyser, parameter, fault, place, now))
        limit = site_limit(analyser, parameter, params)
        breach = open_breach(in_range, limit, params.breach_hold_readings)
        if breach is not None and limit is not None:
            findings.append(_limit_finding(analyser, parameter, breach, limit, place, now))
        if parameter not in params.event_parameters or fault is not None:
            continue
        tail = in_range.iloc[-(3 * params.baseline_readings + params.event_window_readings):]
        flags = outliers(tail, params, params.min_sigma.get(parameter, 0.0))
        if len(flags.outlier) < params.event_window_readings:
            continue
        event_judged = True
        event = event_run(flags.outlier, params)
        if event is not None:
            count = int(flags.outlier.iloc[-params.event_window_readings:].sum())
            event_parts.append((parameter, event, {
                f"{parameter}_outliers": count,
                f"{parameter}_residual": round(float(flags.residual.iloc[-1]), 4),
                f"{parameter}_sigma": round(float(flags.sigma.iloc[-1]), 4),
                "probability": round(event_probability(
                    count, params.event_window_readings, params), 5)}))
    if event_judged:
        judged[AlertKind.QUALITY_EVENT].add(analyser.id)
    if event_parts:
        findings.append(_event_finding(analyser, event_parts, place, now, params))
    return findings, judged


def _sensor_fault(analyser: Analyser, register: County, parameter: str, values: pd.Series,
                  valid: Limit | None, by_series: dict[tuple[str, str], pd.Series],
                  now: pd.Timestamp, params: QualityParams) -> SensorFault | None:
    fault = out_of_range(values, valid, params.breach_hold_readings)
    if fault is None:
        fault = flatline(values, params.flatline_readings)
    limit = params.drift_limits.get(parameter)
    if fault is None and limit is not None:
        fault = drift(values, _paired(analyser, register, parameter, by_series), now, limit,
                      params)
    return fault


def _limit_finding(analyser: Analyser, parameter: str, breach: Breach, limit: Limit,
                   place: Place, now: pd.Timestamp) -> Finding:
    low = limit.minimum is not None and breach.worst < limit.minimum
    bound = limit.minimum if low else limit.maximum
    side = "below" if low else "above"
    unsafe = parameter in ("free_chlorine_mgl", "turbidity_ntu")
    return Finding(
        kind=AlertKind.QUALITY_LIMIT, subject=f"{analyser.id}:{parameter}",
        severity=Severity.CRITICAL if unsafe else Severity.HIGH,
        title=f"{analyser.id}: {parameter} {breach.worst:g} {side} the GB 5749 limit {bound:g}"
              f" ({analyser.site})",
        place=place, started_at=_utc(breach.started_at),
        evidence={"parameter": parameter, "site": analyser.site, "worst": breach.worst,
                  "last": breach.last, "limit_min": limit.minimum,
                  "limit_max": limit.maximum, "readings_beyond": breach.readings},
        window=_window(analyser, [parameter], breach.started_at - pd.Timedelta(hours=6), now))


def _fault_finding(analyser: Analyser, parameter: str, fault: SensorFault, place: Place,
                   now: pd.Timestamp) -> Finding:
    evidence: Evidence = {"parameter": parameter, "fault": fault.fault}
    evidence.update(fault.evidence)
    return Finding(
        kind=AlertKind.SENSOR_FAULT, subject=f"{analyser.id}:{parameter}",
        severity=Severity.MEDIUM,
        title=f"{analyser.id}: {parameter} sensor {fault.fault.replace('_', ' ')}",
        place=place, started_at=_utc(fault.started_at), evidence=evidence,
        window=_window(analyser, [parameter], fault.started_at - pd.Timedelta(hours=6), now))


def _event_finding(analyser: Analyser, parts: list[tuple[str, pd.Timestamp, Evidence]],
                   place: Place, now: pd.Timestamp, params: QualityParams) -> Finding:
    parameters = [name for name, _, _ in parts]
    started = min(first for _, first, _ in parts)
    evidence: Evidence = {"parameters": ",".join(parameters),
                          "window_readings": params.event_window_readings}
    for _, _, numbers in parts:
        probability = numbers.pop("probability", None)
        evidence.update(numbers)
        previous = evidence.get("probability")
        if isinstance(probability, float) and (
                not isinstance(previous, float) or probability > previous):
            evidence["probability"] = probability
    return Finding(
        kind=AlertKind.QUALITY_EVENT, subject=analyser.id, severity=Severity.MEDIUM,
        title=f"{analyser.id}: unusual {', '.join(parameters)} (below the limits so far)",
        place=place, started_at=_utc(started), evidence=evidence,
        window=_window(analyser, parameters, started - pd.Timedelta(hours=12), now))
