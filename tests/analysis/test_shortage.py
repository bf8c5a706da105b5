"""Seasonal shortage on a stored dry-summer surge (tests/analysis/data/shortage.*)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analysis import shortage
from analysis.params import AnalysisParams, ShortageParams
from analysis.pipeline import analyse
from analysis.readings import clean
from common.alerts import AlertKind
from common.schema import ANALYSIS_FIELDS
from tests.analysis.data.reference import Reference, load

PARAMS = ShortageParams()


@pytest.fixture(scope="module")
def surge() -> Reference:
    return load("shortage")


def outlook(ref: Reference, now: pd.Timestamp, readings: pd.DataFrame | None = None
            ) -> tuple[pd.DataFrame, list, set[str]]:
    data = clean(ref.readings if readings is None else readings, now.to_pydatetime(),
                 lookback=timedelta(days=15), max_skew=timedelta(0))
    supply, findings, evaluated = shortage.detect_shortages(data, ref.county, PARAMS,
                                                            now.to_pydatetime())
    return supply.set_index("village"), findings, evaluated


def test_the_surge_is_flagged_at_least_seven_days_before_the_tank_runs_dry_and_stays_flagged(
        surge: Reference):
    dry = pd.Timestamp(surge.effect("demand_surge", "tank_dry_at"))
    begin = pd.Timestamp(surge.effect("demand_surge", "started_at"))
    flagged = []
    for now in pd.date_range(begin, dry, freq="12h"):
        _, findings, _ = outlook(surge, now)
        flagged.append((now, {f.subject: f for f in findings}))
    first = next(now for now, found in flagged if "v002" in found)
    assert dry - first >= pd.Timedelta(days=7), (first, dry)
    after = [found for now, found in flagged if now >= first]
    assert all("v002" in found for found in after)  # no flapping on the way down
    assert all("v001" not in found for _, found in flagged)  # the clean scheme never
    finding = after[0]["v002"]
    assert finding.kind == AlertKind.SHORTAGE and finding.plan_level == "IV"
    assert finding.place.scheme == "v002" and finding.place.township
    assert finding.evidence["people_affected"] == 60


@pytest.mark.parametrize(("days_before", "tolerance"), [(5.0, 1.5), (2.0, 1.0)])
def test_days_to_shortfall_tracks_when_the_tank_really_ran_dry(surge: Reference,
                                                                days_before: float,
                                                                tolerance: float):
    dry = pd.Timestamp(surge.effect("demand_surge", "tank_dry_at"))
    supply, _, _ = outlook(surge, (dry - pd.Timedelta(days=days_before)).floor("h"))
    assert supply.loc["v002", "days_to_shortfall"] == pytest.approx(days_before,
                                                                    abs=tolerance)
    assert supply.loc["v002", "well_trend_m_per_day"] == pytest.approx(1.008, rel=0.1)


def test_capacity_demand_and_per_capita_supply_before_the_surge(surge: Reference):
    now = pd.Timestamp(surge.effect("demand_surge", "started_at")) - pd.Timedelta(hours=2)
    supply, findings, evaluated = outlook(surge, now)
    assert findings == [] and evaluated == {"v001", "v002"}
    for village in ("v001", "v002"):
        wells = [w for w in surge.county.wells if w.village == village]
        rated = sum(w.rated_flow_m3h * w.allowed_hours_per_day for w in wells)
        assert supply.loc[village, "capacity_m3d"] == pytest.approx(rated, rel=0.01)
        inflow = surge.readings[(surge.readings["device"] == f"inflow-{village}")
                                & (surge.readings["field"] == "flow_m3h")
                                & (surge.readings["time"] > now - pd.Timedelta(days=1))
                                & (surge.readings["time"] <= now)]["value"]
        assert supply.loc[village, "demand_m3d"] == pytest.approx(24 * inflow.mean(), rel=0.15)
        assert 40 <= supply.loc[village, "litres_per_person_day"] <= 100
        assert supply.loc[village, "guarantee_rate_pct"] == 100.0
        assert supply.loc[village, "days_to_shortfall"] == PARAMS.horizon_days
        assert supply.loc[village, "plan_level"] == 0
        assert supply.loc[village, "well_margin_m"] > 5


def test_a_dry_tank_means_unmet_demand_a_higher_plan_level_and_a_lower_guarantee_rate(
        surge: Reference):
    dry = pd.Timestamp(surge.effect("demand_surge", "tank_dry_at"))
    supply, findings, _ = outlook(surge, (dry + pd.Timedelta(days=2)).floor("h"))
    row = supply.loc["v002"]
    assert row["days_to_shortfall"] == 0.0
    assert row["unmet_share"] > 0.5 and row["capacity_m3d"] < row["demand_m3d"]
    assert row["guarantee_rate_pct"] < 100.0
    assert row["plan_level"] == shortage.PLAN_NUMBER["II"]  # level I needs 1000 people
    assert [f.plan_level for f in findings if f.subject == "v002"] == ["II"]


def _outlooks(days: list[float], unmet: list[float] | None = None) -> list[shortage.Outlooks]:
    unmet = unmet or [0.0] * len(days)
    return [shortage.Outlooks(
        known=np.array([True]), demand_m3d=np.array([10.0]), capacity_m3d=np.array([10.0]),
        days_to_shortfall=np.array([d]), unmet_share=np.array([u]),
        people_affected=np.array([5000 if d < 60 or u > 0 else 0]),
        well_margin_m=np.array([1.0]), well_trend_m_per_day=np.array([0.5]),
        tank_volume_m3=np.array([5.0]), tank_trend_m3d=np.array([0.0]))
        for d, u in zip(days, unmet, strict=True)]


def test_plan_levels_escalate_at_once_and_step_down_only_past_the_hold_margin():
    # IV <= 14 days, III <= 7, II <= 3; held while within 25% of the threshold.
    days = [30.0, 13.0, 16.0, 6.5, 8.0, 9.5, 2.5, 3.5, 60.0]
    ranks = list(shortage.plan_history(_outlooks(days), PARAMS)[:, 0])
    assert ranks == [0, 1, 1, 2, 2, 1, 3, 3, 0]


def test_level_one_needs_the_people_and_the_unmet_share():
    ranks = shortage.plan_history(_outlooks([0.5, 60.0], unmet=[0.5, 0.45]), PARAMS)
    assert list(ranks[:, 0]) == [4, 4]  # 0.45 >= 0.40 x 0.75: held
    params = PARAMS.model_copy(update={"hold_margin": 0.0})
    assert list(shortage.plan_history(_outlooks([60.0], unmet=[0.3]), params)[:, 0]) == [3]


def test_the_pipeline_carries_the_outlook_through_bad_data(surge: Reference):
    dry = pd.Timestamp(surge.effect("demand_surge", "tank_dry_at"))
    now = (dry - pd.Timedelta(days=7, hours=12)).floor("h")
    data = surge.readings[surge.readings["time"] <= now]
    rng = np.random.default_rng(4)
    gaps = data.drop(data.sample(frac=0.1, random_state=1).index)
    dupes = data.sample(frac=0.05, random_state=2)
    nans = data.sample(frac=0.02, random_state=3).assign(value=np.nan)
    skewed = data.sample(frac=0.02, random_state=5)
    skewed = skewed.assign(time=skewed["time"] + pd.to_timedelta(
        rng.integers(-240, 240, len(skewed)), unit="s"))
    bad = pd.concat([gaps, dupes, nans, skewed]).sample(frac=1.0, random_state=6)
    result = analyse(bad, surge.county, AnalysisParams(), now.to_pydatetime())
    shortages = {f.subject: f for f in result.findings if f.kind == AlertKind.SHORTAGE}
    assert set(shortages) == {"v002"}
    assert {"v001", "v002"} <= result.evaluated[AlertKind.SHORTAGE]
    columns = set(ANALYSIS_FIELDS["supply_outlook"]) | {"village", "township"}
    assert columns <= set(result.supply.columns)
    assert result.supply.set_index("village").loc["v002", "days_to_shortfall"] < 14


def test_without_inflow_data_no_scheme_is_judged(surge: Reference):
    now = pd.Timestamp(surge.effect("demand_surge", "tank_dry_at"))
    pumps_only = surge.readings[surge.readings["kind"] == "pump"]
    supply, findings, evaluated = outlook(surge, now, pumps_only)
    assert supply.empty and findings == [] and evaluated == set()
