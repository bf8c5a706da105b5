"""Leak detection on simulated DMAs and on deliberately bad meter data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analysis import leaks
from analysis.params import AnalysisParams, LeakParams
from analysis.pipeline import analyse
from common.alerts import AlertKind
from simulator.incidents import Incident
from tests.analysis.simdata import START, Simulated, simulate


@pytest.fixture(scope="module")
def leaky() -> Simulated:
    incidents = [
        Incident(kind="background_leak", target="dma-v002-b1",
                 start=START + timedelta(days=3, hours=5), magnitude=0.05, relative=True),
        Incident(kind="burst", target="dma-v003-b1", start=START + timedelta(days=4, hours=5),
                 end=START + timedelta(days=4, hours=11), magnitude=0.25, relative=True),
        Incident(kind="customer_leak", target="v001-h0003",
                 start=START + timedelta(days=3, hours=5), magnitude=0.03),
    ]
    return simulate(4, 60, 6, incidents=incidents)


def keys_at(sim: Simulated, hours: float) -> set[str]:
    result = analyse(sim.readings, sim.county, AnalysisParams(), START + timedelta(hours=hours))
    return {f.key for f in result.findings
            if f.kind in (AlertKind.NIGHT_FLOW, AlertKind.BURST, AlertKind.CUSTOMER_LEAK)}


def test_a_five_percent_leak_is_found_within_24_hours_and_nothing_before(leaky: Simulated):
    onset = 3 * 24 + 5
    assert keys_at(leaky, onset - 1) == set()
    assert "night_flow:dma-v002" in keys_at(leaky, onset + 24)


def test_a_burst_is_found_within_hours_and_named_as_a_burst(leaky: Simulated):
    found = keys_at(leaky, 4 * 24 + 5 + 3)
    assert "burst:dma-v003" in found
    assert "night_flow:dma-v003" not in found


def test_a_customer_leak_is_found_within_48_hours_and_not_taken_for_a_network_leak(
        leaky: Simulated):
    found = keys_at(leaky, 3 * 24 + 5 + 48)
    assert "customer_leak:v001-h0003" in found
    assert "night_flow:dma-v001" not in found


def test_dma_kpis_match_the_simulated_balance_within_tolerance(leaky: Simulated):
    result = analyse(leaky.readings, leaky.county, AnalysisParams(), START + timedelta(days=3))
    days = result.dma_days
    assert set(days["dma"]) == {d.id for d in leaky.county.dmas}
    # Background leakage is 5-12% of demand and meters under-register 1-3%.
    assert days["nrw_pct"].between(3.0, 16.0).all(), days
    assert (days["ili"] > 0).all()
    assert days["night_flow_m3h"].dropna().gt(0).all()


def _volumes(values: list[float], device: str = "m1") -> pd.DataFrame:
    times = pd.date_range(datetime(2026, 6, 1, tzinfo=UTC), periods=len(values), freq="h")
    return pd.DataFrame({"time": times, "device": device, "value": values})


def test_rollover_reset_swap_and_reverse_flow_are_told_apart():
    params = LeakParams()
    raw = pd.concat([_volumes([99_999.90, 0.05, 0.10, 0.06], "wraps"),
                     _volumes([5000.0, 5000.2, 1200.0, 1200.1, 0.02, 0.03], "swapped")])
    continuous, anomalies = leaks.continuous_volumes(raw, params, max_flow_m3h=3.0)
    found = anomalies.groupby("device")["anomaly"].apply(list).to_dict()
    assert found == {"wraps": ["rollover", "reverse"], "swapped": ["swap", "reset"]}
    steps = continuous.groupby("device")["value"].apply(lambda v: list(np.diff(v)))
    assert steps["wraps"] == pytest.approx([0.15, 0.05, -0.04])
    assert steps["swapped"] == pytest.approx([0.2, 0.0, 0.1, 0.02, 0.01])


def test_a_glitch_counts_nothing_and_gaps_are_interpolated():
    raw = _volumes([10.0, 10.1, 9999.0, 10.3, 10.4])
    raw = raw.drop(index=1)  # a missing reading
    continuous, anomalies = leaks.continuous_volumes(raw, LeakParams(), max_flow_m3h=3.0)
    assert "glitch" in set(anomalies["anomaly"])
    grid = pd.date_range(raw["time"].min(), raw["time"].max(), freq="h")
    hourly = leaks.hourly_use(continuous, grid)
    assert hourly.use["m1"].iloc[0] == pytest.approx(hourly.use["m1"].iloc[1])
    assert not hourly.observed["m1"].iloc[0]


def test_bad_data_does_not_break_the_pass_or_raise_alarms(leaky: Simulated):
    data = leaky.readings[leaky.readings["time"] < START + timedelta(days=3)].copy()
    rng = np.random.default_rng(5)
    noisy = data.sample(frac=0.02, random_state=1).assign(value=np.nan)
    dupes = data.sample(frac=0.05, random_state=2)
    skewed = data.sample(frac=0.01, random_state=3)
    skewed = skewed.assign(time=skewed["time"] + pd.to_timedelta(
        rng.integers(-300, 300, len(skewed)), unit="s"))
    future = data.tail(50).assign(time=lambda f: f["time"] + pd.Timedelta(days=30))
    gaps = data.drop(data.sample(frac=0.05, random_state=4).index)
    bad = pd.concat([gaps, noisy, dupes, skewed, future]).sample(frac=1.0, random_state=6)
    result = analyse(bad, leaky.county, AnalysisParams(), START + timedelta(days=3))
    leak_kinds = {AlertKind.NIGHT_FLOW, AlertKind.BURST, AlertKind.CUSTOMER_LEAK}
    assert [f.key for f in result.findings if f.kind in leak_kinds] == []
    assert len(result.dma_days) > 0


def test_readings_in_the_wrong_shape_are_refused(leaky: Simulated):
    with pytest.raises(TypeError):
        analyse([], leaky.county, AnalysisParams(), START)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="columns"):
        analyse(leaky.readings.drop(columns="field"), leaky.county, AnalysisParams(), START)
    with pytest.raises(ValueError, match="timezone"):
        analyse(leaky.readings, leaky.county, AnalysisParams(), datetime(2026, 6, 3))
