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
from simulator.county import build_county
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


def test_a_customer_leak_is_found_at_the_end_of_the_first_whole_night(leaky: Simulated):
    # The leak starts at 13:00 local; the quiet hours 01:00-05:00 end 16 h later.
    onset = 3 * 24 + 5
    assert "customer_leak:v001-h0003" not in keys_at(leaky, onset + 15)
    assert "customer_leak:v001-h0003" in keys_at(leaky, onset + 17)


@pytest.fixture(scope="module")
def surging() -> Simulated:
    """Village v002 draws 2.5 times as much from 23:00 local on day 3 (a dry-summer surge)."""
    surge = Incident(kind="demand_surge", target="v002", start=START + timedelta(days=3, hours=15),
                     magnitude=2.5)
    return simulate(3, 60, 7, incidents=[surge])


def test_a_village_drawing_more_at_night_raises_no_leak_alarms(surging: Simulated):
    onset = 3 * 24 + 15  # 23:00 local
    for hours in (onset + 6, onset + 30, onset + 54):  # 05:00 local, after each night
        found = keys_at(surging, hours)
        assert not {key for key in found if "v002" in key}, (hours, found)


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


# ----------------------------------------------------------------- synthetic series

ONE_DMA = build_county(7, 1, 30)
DMA = ONE_DMA.dmas[0].id


def _hours(days: int) -> pd.DatetimeIndex:
    return pd.date_range(datetime(2026, 6, 1, tzinfo=UTC), periods=24 * days + 1, freq="h")[1:]


def _dma_series(days: int, extra_loss_from: datetime | None = None,
                extra_m3h: float = 0.0) -> leaks.DmaHourly:
    """A DMA with a diurnal demand, losses of 10% of inflow, and an optional step in losses."""
    index = _hours(days)
    local_hour = np.asarray((index.hour + 8) % 24)
    consumption = 0.25 * (1 + 0.8 * np.sin(np.pi * (local_hour - 5) / 16).clip(0))
    losses = np.full(len(index), 0.03)
    if extra_loss_from is not None:
        losses = losses + np.where(index >= extra_loss_from, extra_m3h, 0.0)
    frame = pd.DataFrame({DMA: consumption}, index=index)
    return leaks.DmaHourly(inflow=frame + losses[:, None], consumption=frame,
                           coverage=frame * 0 + 1.0)


def _nights(days: int, last_rise_m3h: float) -> pd.DataFrame:
    nights = pd.date_range("2026-06-01", periods=days, freq="D")
    flow = 0.08 + 0.002 * np.sin(np.arange(days))  # a little night-to-night noise
    flow[-1] += last_rise_m3h
    return pd.DataFrame({DMA: flow}, index=nights)


def test_a_night_flow_rise_without_a_rise_in_losses_is_no_network_leak():
    # e.g. a customer-side leak, a weekend, a dry night's use: the meters registered it
    hourly = _dma_series(10)
    now = datetime(2026, 6, 11, 0, tzinfo=UTC)  # 08:00 local
    found, judged = leaks.detect_network_leaks(hourly, _nights(11, 0.03), ONE_DMA,
                                               LeakParams(), now)
    assert judged == {DMA} and found == []


def test_a_night_flow_rise_with_losses_rising_too_is_a_leak_at_once():
    onset = datetime(2026, 6, 10, 16, tzinfo=UTC)  # midnight local, before the night
    hourly = _dma_series(10, extra_loss_from=onset, extra_m3h=0.02)  # ~5.5% of inflow
    now = datetime(2026, 6, 11, 0, tzinfo=UTC)  # 08:00 local
    found, _ = leaks.detect_network_leaks(hourly, _nights(11, 0.025), ONE_DMA, LeakParams(),
                                          now)
    assert [f.key for f in found] == [f"night_flow:{DMA}"]
    assert found[0].evidence["night_rise_m3h"] == pytest.approx(0.025, abs=0.003)
    # without the night's rise the 24 h balance alone is not there yet (8 h of 24)
    alone, _ = leaks.detect_network_leaks(hourly, _nights(11, 0.0), ONE_DMA, LeakParams(),
                                          now)
    assert alone == []


def test_thresholds_never_go_below_the_rounding_noise_of_the_dma_meters():
    sigma = leaks.rounding_sigma(ONE_DMA, LeakParams(), 24)
    assert sigma[DMA] == pytest.approx(0.01 * np.sqrt(30 / 6) / 24)


def _quiet_use(volumes_m3: dict[str, list[float]], days: int = 4) -> leaks.HourlyUse:
    """Hourly use of three meters: the given ones follow ``volumes_m3`` by local hour."""
    index = _hours(days)
    local_hour = np.asarray((index.hour + 8 - 1) % 24)  # the local hour each value starts at
    meters = [h.meter for h in ONE_DMA.households]
    base = np.where((local_hour >= 7) & (local_hour < 22), 0.01, 0.0)
    use = pd.DataFrame({m: base for m in meters}, index=index)
    for meter, pattern in volumes_m3.items():
        use[meter] = np.asarray(pattern)
    return leaks.HourlyUse(use, use.notna())


def test_a_meter_registering_through_a_whole_night_is_a_customer_leak_and_an_idle_hour_is_not():
    index = _hours(4)
    leaking, idle_once = ONE_DMA.households[0], ONE_DMA.households[1]
    flow = np.full(len(index), 0.03)
    broken = flow.copy()
    local_hour = np.asarray((index.hour + 8 - 1) % 24)
    broken[(local_hour == 3) & (index > index[-24])] = 0.0  # the last night had a pause
    hourly = _quiet_use({leaking.meter: list(flow), idle_once.meter: list(broken)})
    found, judged = leaks.detect_customer_leaks(hourly, ONE_DMA, LeakParams(), index[-1])
    assert [f.subject for f in found] == [leaking.id]
    assert found[0].evidence["night_day_ratio"] == pytest.approx(1.0, abs=0.3)
    assert {leaking.id, idle_once.id} <= judged


def test_an_unread_night_hour_neither_counts_nor_breaks_the_run():
    index = _hours(4)
    household = ONE_DMA.households[0]
    use = _quiet_use({household.meter: [0.03] * len(index)})
    local_hour = np.asarray((index.hour + 8 - 1) % 24)
    observed = use.observed.copy()
    observed.loc[(local_hour == 2) & (index > index[-24]), household.meter] = False
    found, _ = leaks.detect_customer_leaks(leaks.HourlyUse(use.use, observed), ONE_DMA,
                                           LeakParams(), index[-1])
    assert [f.subject for f in found] == [household.id]
    assert found[0].evidence["quiet_hours_never_idle"] == 4 * 4 - 1


def test_a_silent_heavy_user_is_filled_in_with_its_own_usual_share_not_the_average():
    index = _hours(3)
    meters = [h.meter for h in ONE_DMA.households]
    use = pd.DataFrame({m: np.full(len(index), 0.01) for m in meters}, index=index)
    use[meters[0]] = 0.2  # a household drawing 20 times the others: 41% of the DMA
    truth = use.sum(axis=1)
    use.iloc[-12:, 0] = np.nan  # its meter goes silent for the last 12 hours
    inflow = pd.DataFrame({ONE_DMA.dmas[0].inflow_meter: truth * 1.1})
    hourly = leaks.dma_hourly(inflow, use, ONE_DMA, LeakParams())
    silent = hourly.consumption[DMA].iloc[-12:]
    assert silent.to_numpy() == pytest.approx(truth.iloc[-12:].to_numpy(), rel=0.05)
    assert hourly.coverage[DMA].iloc[-1] == pytest.approx(29 / 30)
