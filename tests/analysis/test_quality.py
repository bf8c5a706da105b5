"""Water quality on a stored chlorinator failure and turbidity event (data/quality.*)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analysis import quality
from analysis.params import Limit, QualityParams
from analysis.readings import clean
from common.alerts import AlertKind
from tests.analysis.data.reference import Reference, load

PARAMS = QualityParams()
OUTLET, TAP = "aq-v001-outlet", "aq-v001-tap"


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load("quality")


def detect(ref: Reference, now: pd.Timestamp, readings: pd.DataFrame | None = None,
           params: QualityParams = PARAMS) -> tuple[dict[str, object], dict]:
    data = clean(ref.readings if readings is None else readings, now.to_pydatetime(),
                 lookback=timedelta(days=15), max_skew=timedelta(0))
    findings, evaluated = quality.detect_quality(data, ref.county, params, now.to_pydatetime())
    return {f.key: f for f in findings}, evaluated


@pytest.mark.parametrize(("site", "analyser"), [("outlet", OUTLET), ("tap", TAP)])
def test_a_chlorine_breach_is_flagged_at_the_first_reading_below_the_limit(
        ref: Reference, site: str, analyser: str):
    first_below = pd.Timestamp(ref.effect("chlorinator_failure", f"{site}_below_limit_at"))
    key = f"quality_limit:{analyser}:free_chlorine_mgl"
    before, _ = detect(ref, first_below - pd.Timedelta(minutes=10))
    assert key not in before
    found, evaluated = detect(ref, first_below)
    finding = found[key]
    assert pd.Timestamp(finding.started_at) == first_below
    assert finding.severity == "critical" and finding.place.device == analyser
    limit = 0.3 if site == "outlet" else 0.05
    assert finding.evidence["limit_min"] == limit and finding.evidence["worst"] < limit
    assert f"{analyser}:free_chlorine_mgl" in evaluated[AlertKind.QUALITY_LIMIT]


def test_the_failure_also_shows_as_an_event_before_the_breach_and_clears_afterwards(
        ref: Reference):
    first_below = pd.Timestamp(ref.effect("chlorinator_failure", "outlet_below_limit_at"))
    found, _ = detect(ref, first_below + pd.Timedelta(minutes=30))
    event = found[f"quality_event:{OUTLET}"]
    assert pd.Timestamp(event.started_at) < first_below
    assert "free_chlorine_mgl" in str(event.evidence["parameters"])
    restored = pd.Timestamp(ref.incident("chlorinator_failure")["end"]) + pd.Timedelta(hours=8)
    later, _ = detect(ref, restored)
    assert not [k for k in later if "free_chlorine" in k or k.startswith("quality_event")]


def test_a_turbidity_event_breaches_the_limit_and_is_a_statistical_event(ref: Reference):
    start = pd.Timestamp(ref.incident("turbidity_event")["start"])
    found, _ = detect(ref, start + pd.Timedelta(hours=2))
    breach = found[f"quality_limit:{OUTLET}:turbidity_ntu"]
    assert breach.evidence["worst"] > 1.0 and breach.evidence["limit_max"] == 1.0
    assert f"quality_event:{OUTLET}" in found
    assert not [k for k in found if k.startswith("sensor_fault")]


def test_clean_water_raises_nothing(ref: Reference):
    failure = pd.Timestamp(ref.incident("chlorinator_failure")["start"])
    for now in pd.date_range(failure - pd.Timedelta(days=1), failure, freq="2h"):
        found, evaluated = detect(ref, now)
        assert found == {}, now
        assert evaluated[AlertKind.QUALITY_EVENT] == {OUTLET, TAP}


def test_a_breach_stays_open_until_enough_readings_comply():
    times = pd.date_range("2026-06-01", periods=8, freq="10min", tz="UTC")
    limit = Limit(minimum=0.3)
    values = pd.Series([0.5, 0.25, 0.35, 0.36, 0.28, 0.4, 0.41, 0.42], index=times)
    assert quality.open_breach(values.iloc[:5], limit, 3).started_at == times[1]
    assert quality.open_breach(values.iloc[:7], limit, 3).started_at == times[1]
    assert quality.open_breach(values, limit, 3) is None


def test_the_binomial_discriminator_needs_three_outliers_in_twelve():
    assert quality.min_event_outliers(PARAMS) == 3
    assert quality.event_probability(2, 12, PARAMS) < PARAMS.event_probability


def test_small_schemes_limited_by_source_get_the_higher_turbidity_limit(ref: Reference):
    outlet = next(a for a in ref.county.analysers if a.id == OUTLET)
    limited = PARAMS.model_copy(update={"source_limited_schemes": ["v001"]})
    assert quality.site_limit(outlet, "turbidity_ntu", PARAMS).maximum == 1.0
    assert quality.site_limit(outlet, "turbidity_ntu", limited).maximum == 3.0
    assert quality.site_limit(outlet, "free_chlorine_mgl", limited).minimum == 0.3


def _edit(readings: pd.DataFrame, device: str, field: str, since: pd.Timestamp,
          change) -> pd.DataFrame:
    rows = ((readings["device"] == device) & (readings["field"] == field)
            & (readings["time"] > since))
    edited = readings.copy()
    edited.loc[rows, "value"] = change(edited.loc[rows])
    return edited


def test_a_flatlined_sensor_is_a_sensor_fault_not_an_event(ref: Reference):
    now = pd.Timestamp(ref.incident("chlorinator_failure")["start"]) - pd.Timedelta(hours=1)
    stuck = _edit(ref.readings, OUTLET, "ph", now - pd.Timedelta(hours=3), lambda r: 7.41)
    found, _ = detect(ref, now, stuck)
    fault = found[f"sensor_fault:{OUTLET}:ph"]
    assert fault.evidence["fault"] == "flatline" and fault.evidence["value"] == 7.41
    assert f"quality_event:{OUTLET}" not in found


def test_readings_out_of_the_instrument_range_are_the_sensors_fault(ref: Reference):
    now = pd.Timestamp(ref.incident("chlorinator_failure")["start"]) - pd.Timedelta(hours=1)
    spiked = _edit(ref.readings, OUTLET, "free_chlorine_mgl", now - pd.Timedelta(minutes=25),
                   lambda r: 12.0)
    found, _ = detect(ref, now, spiked)
    assert found[f"sensor_fault:{OUTLET}:free_chlorine_mgl"].evidence["fault"] == "out_of_range"
    assert f"quality_limit:{OUTLET}:free_chlorine_mgl" not in found


def test_drift_against_the_paired_site_and_against_itself(ref: Reference):
    now = pd.Timestamp(ref.incident("chlorinator_failure")["start"]) - pd.Timedelta(hours=1)
    since = now - pd.Timedelta(days=3)

    def ramp(per_day: float):
        def change(rows: pd.DataFrame) -> pd.Series:
            days = (rows["time"] - since) / pd.Timedelta(days=1)
            return rows["value"] + per_day * days
        return change

    drifting = _edit(ref.readings, TAP, "turbidity_ntu", since, ramp(0.2))
    drifting = _edit(drifting, OUTLET, "ph", since, ramp(0.25))
    found, _ = detect(ref, now, drifting)
    tap = found[f"sensor_fault:{TAP}:turbidity_ntu"]
    assert tap.evidence["fault"] == "drift" and tap.evidence["against"] == "paired site"
    assert tap.evidence["change_over_window"] == pytest.approx(0.6, abs=0.1)
    assert found[f"sensor_fault:{OUTLET}:ph"].evidence["against"] == "itself"
    assert f"sensor_fault:{OUTLET}:turbidity_ntu" not in found  # the pair does not drift


def test_gaps_duplicates_nan_and_skew_do_not_raise_or_alarm(ref: Reference):
    now = pd.Timestamp(ref.incident("chlorinator_failure")["start"]) - pd.Timedelta(hours=1)
    data = ref.readings[ref.readings["time"] <= now]
    rng = np.random.default_rng(9)
    skewed = data.sample(frac=0.02, random_state=1)
    skewed = skewed.assign(time=skewed["time"] + pd.to_timedelta(
        rng.integers(-120, 120, len(skewed)), unit="s"))
    bad = pd.concat([data.drop(data.sample(frac=0.1, random_state=2).index),
                     data.sample(frac=0.05, random_state=3),
                     data.sample(frac=0.02, random_state=4).assign(value=np.nan), skewed])
    found, _ = detect(ref, now, bad)
    assert found == {}
