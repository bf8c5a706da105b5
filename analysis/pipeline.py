"""One analysis pass: long readings and the asset register in, findings and KPI frames out.

No I/O here: ``analysis.source`` reads InfluxDB (or the offline CSV) into the long format,
``analysis.tracker`` and ``analysis.sink`` turn the result into alerts and points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from analysis import devices, leaks, quality, shortage
from analysis.findings import Finding
from analysis.params import AnalysisParams
from analysis.readings import clean, hour_grid, require_aware, series, wide
from common.alerts import AlertKind
from common.register import County

#: bulk inflow meters: far above any household, still catches a garbled register
INFLOW_MAX_FLOW_M3H = 5000.0


@dataclass
class Analysis:
    """The result of :func:`analyse`.

    ``findings``: problems present as of ``now``. ``evaluated``: per alert kind, the
    subjects the pass could judge (an open alert of that kind and subject that is not among
    the findings has cleared; a subject missing here was not judged, e.g. no fresh data).
    ``dma_days``: per DMA and complete local day, columns of ``leaks.dma_kpis``.
    ``supply``: per village scheme, columns ``shortage.SUPPLY_COLUMNS``.
    ``meter_anomalies``: register wraps, resets, swaps, reverse steps and glitches seen.
    """

    now: datetime
    findings: list[Finding]
    evaluated: dict[AlertKind, set[str]]
    dma_days: pd.DataFrame
    supply: pd.DataFrame
    meter_anomalies: pd.DataFrame = field(default_factory=pd.DataFrame)


def analyse(readings: pd.DataFrame, register: County, params: AnalysisParams,
            now: datetime) -> Analysis:
    """Run every detector on ``readings`` (long format, ``analysis.readings``) as of ``now``.

    Raises
    ------
    TypeError, ValueError
        Readings not in the long format, or ``now`` without a timezone.
    """
    stamp = require_aware(now)
    data = clean(readings, stamp.to_pydatetime(),
                 lookback=timedelta(days=params.lookback_days),
                 max_skew=timedelta(minutes=params.max_clock_skew_min))
    # Readings a little ahead of "now" (clock skew) are kept for devices, not for balances.
    # (time-sorted: a slice, where a mask would copy a county's 29 M rows)
    data_now = data.iloc[:int(data["time"].searchsorted(stamp, side="right"))]
    findings: list[Finding] = []
    evaluated: dict[AlertKind, set[str]] = defaultdict(set)

    def collect(kinds: tuple[AlertKind, ...], result: tuple[list[Finding], set[str]]) -> None:
        found, judged = result
        findings.extend(found)
        for kind in kinds:
            evaluated[kind] |= judged

    grid = hour_grid(stamp - timedelta(days=params.lookback_days), stamp)
    lp = params.leaks
    meter_volumes = series(data_now, "meter", "volume_m3")
    inflow_volumes = series(data_now, "dma_inflow", "volume_m3")
    meter_cont, anomalies = leaks.continuous_volumes(
        meter_volumes, lp, max_flow_m3h=lp.max_household_flow_m3h)
    inflow_cont, inflow_anomalies = leaks.continuous_volumes(
        inflow_volumes, lp, max_flow_m3h=INFLOW_MAX_FLOW_M3H)
    if len(grid) >= 2:
        meter_use = leaks.hourly_use(meter_cont, grid)
        inflow_use = leaks.hourly_use(inflow_cont, grid, exact=True)
        hourly = leaks.dma_hourly(inflow_use.use, meter_use.use, register, lp)
        inflow_by_dma = wide(data_now, "dma_inflow", "flow_m3h").rename(
            columns={d.inflow_meter: d.id for d in register.dmas})
        nightly = leaks.night_minimum(inflow_by_dma, register.utc_offset_hours, lp)
        collect((AlertKind.BURST, AlertKind.NIGHT_FLOW),
                leaks.detect_network_leaks(hourly, nightly, register, lp, stamp))
        collect((AlertKind.CUSTOMER_LEAK,),
                leaks.detect_customer_leaks(meter_use, register, lp, stamp))
        dma_days = leaks.dma_kpis(hourly, nightly, register, lp)
        collect((AlertKind.WATER_BALANCE,), leaks.detect_water_balance(dma_days, register, lp))
    else:
        dma_days = leaks.dma_kpis(
            leaks.DmaHourly(pd.DataFrame(), pd.DataFrame(), pd.DataFrame()),
            pd.DataFrame(), register, lp)
    # One pass over the kinds, so each detector filters only the readings it reads.
    scheme_data = data_now[data_now["kind"].isin(["pump", "tank", "dma_inflow", "quality"])]
    supply, found, judged = shortage.detect_shortages(
        scheme_data[scheme_data["kind"] != "quality"], register, params.shortage,
        stamp.to_pydatetime(), dma_days)
    collect((AlertKind.SHORTAGE,), (found, judged))
    for result in (quality.detect_quality(scheme_data[scheme_data["kind"] == "quality"],
                                          register, params.quality, stamp.to_pydatetime()),
                   devices.detect_devices(
                       data, register, params.devices, stamp.to_pydatetime(),
                       anomalies=_stack(anomalies, inflow_anomalies),
                       volumes=_stack(meter_volumes, inflow_volumes))):
        found, judged_by_kind = result
        findings.extend(found)
        for kind, subjects in judged_by_kind.items():
            evaluated[kind] |= subjects
    return Analysis(now=stamp.to_pydatetime(), findings=findings, evaluated=dict(evaluated),
                    dma_days=dma_days, supply=supply, meter_anomalies=anomalies)


def _stack(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Two frames of the same columns as one (an empty one adds nothing)."""
    parts = [frame for frame in (first, second) if not frame.empty]
    if not parts:
        return first
    return pd.concat(parts, ignore_index=True) if len(parts) == 2 else parts[0]
