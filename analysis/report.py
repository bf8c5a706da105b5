"""The leakage and compliance report: per village and month, as CSV, XLSX and PNG plots.

:func:`build_report` is pure: the analysis's per-DMA daily KPIs (``Analysis.dma_days``), the
supply outlook (``Analysis.supply``), the long readings and the asset register in; frames
out. :func:`write_report` builds it and writes the files:

- ``villages_monthly.csv``: per village and local month: days with a balance, supplied
  volume (m3, the DMA inflow meters), consumption (m3, household meters), non-revenue water
  (m3 and % of supplied), litres per person per day (consumption over the register's
  population), days short and the supply guarantee rate (%, T/CHES 18-2018: a day is short
  when the village tank ran dry or consumption fell below ``shortage.min_lpcd`` L/person),
  and quality compliance (% of analyser readings within the GB 5749 limits of
  ``quality.limits``; readings outside an analyser's valid range are sensor faults and left
  out).
- ``dmas_monthly.csv``: per DMA and local month: the same balance, mean litres per connection
  per day, mean ILI and mean minimum night flow.
- ``report.xlsx``: those two sheets, the daily KPIs (``dma_days``) and the supply outlook.
- ``night_flow_balance_<dma>.png`` for the ``worst`` DMAs by NRW %: daily minimum night flow
  against its baseline (m3/h), and daily inflow against consumption (m3) with NRW %.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.params import AnalysisParams, Limit
from common.register import County

log = logging.getLogger(__name__)

#: per-DMA daily KPI columns the report reads (``analysis.leaks.dma_kpis``)
DMA_DAY_COLUMNS = ("dma", "village", "day", "inflow_m3", "consumption_m3", "nrw_m3",
                   "litres_per_connection_day", "ili", "night_flow_m3h", "night_baseline_m3h")
VILLAGE_COLUMNS = [
    "village", "village_name", "township", "month", "days", "population", "supplied_m3",
    "consumption_m3", "nrw_m3", "nrw_pct", "litres_per_person_day", "days_short",
    "guarantee_rate_pct", "quality_readings", "quality_compliant", "quality_compliance_pct",
]
DMA_COLUMNS = [
    "dma", "village", "month", "days", "supplied_m3", "consumption_m3", "nrw_m3", "nrw_pct",
    "litres_per_connection_day", "ili", "night_flow_m3h",
]


@dataclass
class Report:
    """The report's frames; ``worst_dmas`` are ranked by NRW % over the whole period."""

    villages: pd.DataFrame
    dmas: pd.DataFrame
    dma_days: pd.DataFrame
    supply: pd.DataFrame
    worst_dmas: list[str] = field(default_factory=list)


@dataclass
class ReportFiles:
    villages_csv: Path
    dmas_csv: Path
    xlsx: Path
    plots: list[Path]


def _month(days: pd.Series) -> pd.Series:
    """Local month ("2026-06") of local dates."""
    return pd.to_datetime(days).dt.strftime("%Y-%m")


def _local(times: pd.Series, register: County) -> pd.Series:
    """Naive local wall-clock times of UTC-aware ``times``."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None) + pd.Timedelta(
        hours=register.utc_offset_hours)


def _share_pct(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (100 * part / whole.where(whole > 0)).astype(float)


def _check_dma_days(dma_days: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in DMA_DAY_COLUMNS if c not in dma_days.columns]
    if missing:
        raise ValueError(f"dma_days lacks columns {missing}")
    frame = dma_days.dropna(subset=["inflow_m3", "consumption_m3"]).copy()
    frame["month"] = _month(frame["day"])
    return frame


def dma_months(dma_days: pd.DataFrame) -> pd.DataFrame:
    """Per DMA and local month: balance sums (m3), NRW %, mean L/connection/day, ILI, night flow.

    Days without both an inflow and a consumption figure are left out of every column.
    """
    frame = _check_dma_days(dma_days)
    if frame.empty:
        return pd.DataFrame(columns=DMA_COLUMNS)
    grouped = frame.groupby(["dma", "village", "month"], sort=True)
    out = grouped.agg(days=("day", "nunique"), supplied_m3=("inflow_m3", "sum"),
                      consumption_m3=("consumption_m3", "sum"), nrw_m3=("nrw_m3", "sum"),
                      litres_per_connection_day=("litres_per_connection_day", "mean"),
                      ili=("ili", "mean"), night_flow_m3h=("night_flow_m3h", "mean"))
    out = out.reset_index()
    out["nrw_pct"] = _share_pct(out["nrw_m3"], out["supplied_m3"])
    return out[DMA_COLUMNS]


def short_days(dma_days: pd.DataFrame, readings: pd.DataFrame, register: County,
               params: AnalysisParams) -> pd.DataFrame:
    """Per village and local day with a balance: was supply short (cut or insufficient)?

    Short when the village tank was at or below ``shortage.dry_tank_share`` of its capacity
    at any reading that day, or when metered consumption per person fell below
    ``shortage.min_lpcd`` L. Columns: village, day, lpcd, tank_dry, short.
    """
    frame = _check_dma_days(dma_days)
    population = {v.id: v.population for v in register.villages}
    daily = frame.groupby(["village", "day"], as_index=False)["consumption_m3"].sum()
    daily["lpcd"] = 1000 * daily["consumption_m3"] / daily["village"].map(population)
    capacity = {t.id: (t.village, t.capacity_m3) for t in register.tanks}
    tanks = readings[(readings["kind"] == "tank") & (readings["field"] == "volume_m3")
                     & readings["device"].isin(list(capacity))]
    dry_days: set[tuple[str, object]] = set()
    if not tanks.empty:
        village = tanks["device"].map({k: v[0] for k, v in capacity.items()})
        limit = tanks["device"].map({k: v[1] for k, v in capacity.items()}).astype(float)
        dry = tanks[tanks["value"] <= params.shortage.dry_tank_share * limit]
        local_day = _local(dry["time"], register).dt.date
        dry_days = set(zip(village[dry.index], local_day, strict=True))
    daily["tank_dry"] = [(v, d) in dry_days for v, d in zip(daily["village"], daily["day"],
                                                             strict=True)]
    daily["short"] = daily["tank_dry"] | (daily["lpcd"] < params.shortage.min_lpcd)
    return daily[["village", "day", "lpcd", "tank_dry", "short"]]


def _limit_of(params: AnalysisParams, analyser: str, site: str, name: str) -> Limit | None:
    override = params.quality.analyser_limits.get(analyser, {})
    return override.get(name) or params.quality.limits.get(site, {}).get(name)


def _within(values: pd.Series, limit: Limit | None) -> pd.Series:
    inside = pd.Series(True, index=values.index)
    if limit is not None and limit.minimum is not None:
        inside &= values >= limit.minimum
    if limit is not None and limit.maximum is not None:
        inside &= values <= limit.maximum
    return inside


def quality_compliance(readings: pd.DataFrame, register: County,
                       params: AnalysisParams) -> pd.DataFrame:
    """Per village and local month: analyser readings judged and those within GB 5749.

    A reading is one analyser report (its time); it complies when every parameter with a
    limit at its site is within that limit. Values outside the parameter's valid range are
    sensor faults: such a value is not judged (a report with nothing left to judge is not
    counted). Columns: village, month, quality_readings, quality_compliant.
    """
    sites = {a.id: (a.village, a.site) for a in register.analysers}
    quality = readings[(readings["kind"] == "quality") & readings["device"].isin(list(sites))]
    columns = ["village", "month", "quality_readings", "quality_compliant"]
    if quality.empty:
        return pd.DataFrame(columns=columns)
    judged_parts = []
    for (analyser, name), values in quality.groupby(["device", "field"], sort=False):
        village, site = sites[str(analyser)]
        limit = _limit_of(params, str(analyser), site, str(name))
        if limit is None:
            continue
        valid = _within(values["value"], params.quality.valid_ranges.get(str(name)))
        kept = values[valid]
        judged_parts.append(pd.DataFrame({
            "device": kept["device"].astype(str), "time": kept["time"], "village": village,
            "ok": _within(kept["value"], limit)}))
    if not judged_parts:
        return pd.DataFrame(columns=columns)
    judged = pd.concat(judged_parts, ignore_index=True)
    per_report = judged.groupby(["village", "device", "time"], as_index=False)["ok"].all()
    per_report["month"] = _local(per_report["time"], register).dt.strftime("%Y-%m")
    out = per_report.groupby(["village", "month"], as_index=False).agg(
        quality_readings=("ok", "size"), quality_compliant=("ok", "sum"))
    return out[columns]


def village_months(dma_days: pd.DataFrame, readings: pd.DataFrame, register: County,
                   params: AnalysisParams) -> pd.DataFrame:
    """Per village and local month: supply, consumption, NRW, L/person/day, guarantee, quality.

    Volumes are sums over the village's DMAs and the days with a balance (m3); NRW % is of
    supplied volume; litres per person per day is consumption over the register population
    and those days; the guarantee rate is the share of those days not short
    (:func:`short_days`); quality columns as :func:`quality_compliance` (NaN without an
    analyser).
    """
    frame = _check_dma_days(dma_days)
    if frame.empty:
        return pd.DataFrame(columns=VILLAGE_COLUMNS)
    volumes = frame.groupby(["village", "month"], as_index=False).agg(
        days=("day", "nunique"), supplied_m3=("inflow_m3", "sum"),
        consumption_m3=("consumption_m3", "sum"), nrw_m3=("nrw_m3", "sum"))
    shortfall = short_days(dma_days, readings, register, params)
    shortfall["month"] = _month(shortfall["day"])
    short = shortfall.groupby(["village", "month"], as_index=False)["short"].sum()
    out = volumes.merge(short.rename(columns={"short": "days_short"}), how="left",
                        on=["village", "month"])
    out = out.merge(quality_compliance(readings, register, params), how="left",
                    on=["village", "month"])
    villages = {v.id: v for v in register.villages}
    out["village_name"] = out["village"].map({k: v.name for k, v in villages.items()})
    out["township"] = out["village"].map({k: v.township for k, v in villages.items()})
    out["population"] = out["village"].map({k: v.population for k, v in villages.items()})
    out["nrw_pct"] = _share_pct(out["nrw_m3"], out["supplied_m3"])
    out["litres_per_person_day"] = (1000 * out["consumption_m3"]
                                    / (out["population"] * out["days"]))
    out["days_short"] = out["days_short"].fillna(0).astype(int)
    for name in ("quality_readings", "quality_compliant"):
        out[name] = out[name].astype("Int64")  # NaN where the village has no analyser
    out["guarantee_rate_pct"] = 100 * (out["days"] - out["days_short"]) / out["days"]
    out["quality_compliance_pct"] = _share_pct(out["quality_compliant"].astype(float),
                                               out["quality_readings"].astype(float))
    return out[VILLAGE_COLUMNS].sort_values(["village", "month"], ignore_index=True)


def worst_dmas(dma_days: pd.DataFrame, count: int) -> list[str]:
    """The ``count`` DMAs with the highest NRW % over every day with a balance."""
    frame = _check_dma_days(dma_days)
    if frame.empty or count <= 0:
        return []
    totals = frame.groupby("dma")[["nrw_m3", "inflow_m3"]].sum()
    share = (totals["nrw_m3"] / totals["inflow_m3"].where(totals["inflow_m3"] > 0)).dropna()
    return list(share.sort_values(ascending=False).index[:count].astype(str))


def build_report(dma_days: pd.DataFrame, supply: pd.DataFrame, readings: pd.DataFrame,
                 register: County, params: AnalysisParams | None = None, *,
                 worst: int = 3) -> Report:
    """Every frame of the report (pure; see the module documentation for the columns).

    Raises
    ------
    ValueError
        ``dma_days`` lacks a KPI column the report needs.
    """
    chosen = params or AnalysisParams()
    return Report(villages=village_months(dma_days, readings, register, chosen),
                  dmas=dma_months(dma_days), dma_days=dma_days.copy(), supply=supply.copy(),
                  worst_dmas=worst_dmas(dma_days, worst))


def plot_dma(dma_days: pd.DataFrame, dma: str, path: Path) -> Path:
    """Two panels for one DMA: night flow against baseline (m3/h); inflow, consumption, NRW."""
    days = _check_dma_days(dma_days)
    days = days[days["dma"] == dma].sort_values("day")
    when = pd.to_datetime(days["day"])
    figure = Figure(figsize=(9, 6.5), layout="constrained")
    FigureCanvasAgg(figure)
    night, balance = figure.subplots(2, 1, sharex=True)
    night.plot(when, days["night_flow_m3h"], marker="o", ms=3, label="minimum night flow")
    night.plot(when, days["night_baseline_m3h"], ls="--", label="baseline")
    night.set_ylabel("m3/h (02:00-04:00 local)")
    night.set_ylim(bottom=0)
    night.set_title(f"{dma}: minimum night flow")
    night.legend(loc="lower left")
    balance.plot(when, days["inflow_m3"], label="supplied (inflow)")
    balance.plot(when, days["consumption_m3"], label="consumption (meters)")
    balance.fill_between(when, days["consumption_m3"], days["inflow_m3"], alpha=0.25,
                         label="non-revenue water")
    balance.set_ylabel("m3/day")
    balance.set_ylim(bottom=0)
    balance.set_title(f"{dma}: daily water balance")
    share = balance.twinx()
    share.plot(when, 100 * days["nrw_m3"] / days["inflow_m3"].where(days["inflow_m3"] > 0),
               color="black", lw=0.8, label="NRW % (right)")
    share.set_ylabel("NRW %")
    share.set_ylim(bottom=0)
    handles, labels = balance.get_legend_handles_labels()
    more_handles, more_labels = share.get_legend_handles_labels()
    balance.legend(handles + more_handles, labels + more_labels, loc="lower left")
    figure.autofmt_xdate()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def _sheet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Excel takes no timezone-aware datetimes: write them as naive UTC."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def write_report(out_dir: Path, *, dma_days: pd.DataFrame, supply: pd.DataFrame,
                 readings: pd.DataFrame, register: County,
                 params: AnalysisParams | None = None, worst: int = 3) -> ReportFiles:
    """Build the report and write its CSV, XLSX and PNG files into ``out_dir``."""
    report = build_report(dma_days, supply, readings, register, params, worst=worst)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(villages_csv=out_dir / "villages_monthly.csv",
                        dmas_csv=out_dir / "dmas_monthly.csv", xlsx=out_dir / "report.xlsx",
                        plots=[])
    report.villages.to_csv(files.villages_csv, index=False, float_format="%.4f")
    report.dmas.to_csv(files.dmas_csv, index=False, float_format="%.4f")
    sheets: Sequence[tuple[str, pd.DataFrame]] = (
        ("villages_monthly", report.villages), ("dmas_monthly", report.dmas),
        ("dma_days", report.dma_days), ("supply_outlook", report.supply))
    with pd.ExcelWriter(files.xlsx, engine="openpyxl") as writer:
        for name, frame in sheets:
            _sheet_ready(frame).to_excel(writer, sheet_name=name, index=False)
    for dma in report.worst_dmas:
        files.plots.append(plot_dma(report.dma_days, dma,
                                    out_dir / f"night_flow_balance_{dma}.png"))
    log.info("report: %d village-months, %d DMA-months, %d plots in %s",
             len(report.villages), len(report.dmas), len(files.plots), out_dir)
    return files


__all__ = ["Report", "ReportFiles", "build_report", "dma_months", "plot_dma",
           "quality_compliance", "short_days", "village_months", "worst_dmas", "write_report"]
