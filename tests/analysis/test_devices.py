"""Device checks on stored incidents (data/devices.*) and on deliberately broken series."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analysis import devices, leaks
from analysis.params import DeviceParams, LeakParams
from analysis.readings import clean, series
from common.alerts import AlertKind
from tests.analysis.data.reference import Reference, load

PARAMS = DeviceParams()


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load("devices")


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def detect(ref: Reference, now: pd.Timestamp, readings: pd.DataFrame | None = None
           ) -> tuple[dict[str, object], dict]:
    readings = ref.readings if readings is None else readings
    # The stored series runs on past ``now``; a live pass only sees skewed clocks ahead.
    data = clean(readings[readings["time"] <= now], now.to_pydatetime(),
                 lookback=timedelta(days=15), max_skew=timedelta(minutes=10))
    findings, judged = devices.detect_devices(data, ref.county, PARAMS, now.to_pydatetime())
    return {f.key: f for f in findings}, judged


def test_nothing_is_raised_before_the_incidents(ref: Reference):
    for now in pd.date_range(at("2026-06-01T00:00"), at("2026-06-01T11:00"), freq="1h"):
        found, judged = detect(ref, now)
        assert found == {}, now
    assert len(judged[AlertKind.DEVICE_SILENT]) == 24 + 2 + 2 + 2 + 2  # meters, wells...


def test_an_offline_meter_is_silent_after_three_and_a_half_intervals_and_clears(
        ref: Reference):
    key = "device_silent:v001-h0002"
    assert key not in detect(ref, at("2026-06-01T20:00"))[0]
    found, judged = detect(ref, at("2026-06-01T21:00"))
    silent = found[key]
    assert pd.Timestamp(silent.started_at) == at("2026-06-01T17:00")  # its last reading
    assert silent.place.household == "v001-h0002" and silent.evidence["missed_intervals"] > 3.5
    back, judged = detect(ref, at("2026-06-02T06:30"))
    assert key not in back and "v001-h0002" in judged[AlertKind.DEVICE_SILENT]


def test_a_silent_gateway_is_one_alert_not_one_per_device(ref: Reference):
    cut = at("2026-06-01T10:00")
    village = {h.meter for h in ref.county.households if h.village == "v002"} | {
        "pump-v002-1", "tank-v002", "inflow-v002"}
    quiet = ref.readings[~(ref.readings["device"].isin(village)
                           & (ref.readings["time"] > cut))]
    found, judged = detect(ref, cut + pd.Timedelta(hours=5), quiet)
    assert "gateway_silent:gw-v002" in found
    assert not [k for k in found if k.startswith("device_silent")]
    assert not judged[AlertKind.DEVICE_SILENT] & {
        h.id for h in ref.county.households if h.village == "v002"}
    assert found["gateway_silent:gw-v002"].evidence["silent_devices"] == 12 + 3


def test_low_battery_is_flagged_from_the_first_reading_that_says_so(ref: Reference):
    found, _ = detect(ref, at("2026-06-01T14:00"))
    battery = found["low_battery:v001-h0003"]
    assert pd.Timestamp(battery.started_at) == at("2026-06-01T12:00")
    # not monitored and in credit: the forced closure later is the battery's alert
    later, _ = detect(ref, at("2026-06-02T14:00"))
    assert "low_battery:v001-h0003" in later and "valve_closed:v001-h0003" not in later


def test_a_monitored_households_valve_closed_at_zero_balance_escalates_and_clears(
        ref: Reference):
    household = ref.incident("zero_balance")["target"]
    key = f"valve_closed:{household}"
    first, _ = detect(ref, at("2026-06-01T16:00"))
    assert first[key].severity == "high" and first[key].place.monitored
    assert first[key].evidence["cause"] == "zero_balance"
    later, _ = detect(ref, at("2026-06-01T19:00"))
    assert later[key].severity == "critical"
    assert pd.Timestamp(later[key].started_at) == at("2026-06-01T16:00")
    assert key not in detect(ref, at("2026-06-02T17:00"))[0]


def test_tamper_is_flagged_while_the_meter_reports_it(ref: Reference):
    found, _ = detect(ref, at("2026-06-02T03:00"))
    assert found["tamper:v002-h0004"].severity == "medium"
    assert "valve_closed:v002-h0004" not in found  # in credit, not monitored
    assert "tamper:v002-h0004" not in detect(ref, at("2026-06-02T08:00"))[0]


def test_a_pump_fault_code_is_flagged_after_two_readings_and_is_not_a_dry_run(ref: Reference):
    assert "pump_fault:pump-v001-1" not in detect(ref, at("2026-06-02T08:00"))[0]
    found, _ = detect(ref, at("2026-06-02T08:05"))
    fault = found["pump_fault:pump-v001-1"]
    assert fault.evidence["fault_code"] == 3
    assert pd.Timestamp(fault.started_at) == at("2026-06-02T08:00")
    assert not [k for k in found if k.startswith(("pump_dry_run", "pump_overcurrent"))]
    assert "pump_fault:pump-v001-1" not in detect(ref, at("2026-06-02T11:30"))[0]


def _edit_pump(readings: pd.DataFrame, field: str, since: pd.Timestamp, value) -> pd.DataFrame:
    rows = ((readings["device"] == "pump-v002-1") & (readings["field"] == field)
            & (readings["time"] > since))
    edited = readings.copy()
    edited.loc[rows, "value"] = value(edited.loc[rows, "value"])
    return edited


def _running_moment(ref: Reference) -> pd.Timestamp:
    """A moment when pump-v002-1 has run for the last 20 minutes."""
    running = ref.readings[(ref.readings["device"] == "pump-v002-1")
                           & (ref.readings["field"] == "running")].set_index("time")["value"]
    on = running.rolling("20min").min() > 0.5
    return pd.Timestamp(on[on].index[len(on[on]) // 2])


def test_dry_running_and_overcurrent_are_told_apart(ref: Reference):
    now = _running_moment(ref)
    since = now - pd.Timedelta(minutes=12)
    data = ref.readings[ref.readings["time"] <= now]
    dry = _edit_pump(_edit_pump(data, "flow_m3h", since, lambda v: v * 0.2),
                     "current_a", since, lambda v: v * 0.5)
    found, _ = detect(ref, now, dry)
    assert "pump_dry_run:pump-v002-1" in found and "pump_overcurrent:pump-v002-1" not in found
    hot = _edit_pump(data, "current_a", since, lambda v: v * 1.5)
    found, _ = detect(ref, now, hot)
    assert "pump_overcurrent:pump-v002-1" in found and "pump_dry_run:pump-v002-1" not in found
    assert found["pump_overcurrent:pump-v002-1"].evidence["normal_current_a"] > 0


def test_a_pump_starting_every_ten_minutes_is_cycling(ref: Reference):
    now = _running_moment(ref)
    data = ref.readings[ref.readings["time"] <= now]
    rows = ((data["device"] == "pump-v002-1") & (data["field"] == "running")
            & (data["time"] > now - pd.Timedelta(hours=2)))
    flapping = data.copy()
    minutes = flapping.loc[rows, "time"].dt.minute
    flapping.loc[rows, "value"] = (minutes % 10 < 5).astype(float)
    found, _ = detect(ref, now, flapping)
    assert found["pump_cycling:pump-v002-1"].evidence["starts_per_hour"] >= 5


def test_reverse_flow_comes_from_the_volume_classification(ref: Reference):
    now = at("2026-06-01T12:00")
    data = clean(ref.readings, now.to_pydatetime(), lookback=timedelta(days=15),
                 max_skew=timedelta(0))
    volumes = series(data, "meter", "volume_m3")
    meter = next(h.meter for h in ref.county.households if h.id == "v001-h0007")
    mine = volumes["device"] == meter
    last_three = volumes[mine].index[-3:]
    volumes.loc[last_three, "value"] = volumes.loc[last_three, "value"] - [0.05, 0.1, 0.15]
    _, anomalies = leaks.continuous_volumes(volumes, LeakParams(), max_flow_m3h=3.0)
    found, judged = devices.detect_reverse_flow(anomalies, volumes, ref.county, PARAMS,
                                                now.to_pydatetime())
    assert [f.key for f in found] == ["reverse_flow:v001-h0007"]
    assert found[0].evidence["backward_steps"] >= 2
    assert "v002-h0001" in judged[AlertKind.REVERSE_FLOW]


def test_only_kinds_in_the_data_are_judged_for_silence(ref: Reference):
    quality_only = ref.readings[ref.readings["kind"] == "quality"]
    found, judged = detect(ref, at("2026-06-01T10:00"), quality_only)
    assert found == {}
    assert judged[AlertKind.DEVICE_SILENT] == {"aq-v001-outlet", "aq-v001-tap"}


def test_duplicates_nan_and_skewed_clocks_raise_nothing(ref: Reference):
    now = at("2026-06-01T11:00")
    data = ref.readings[ref.readings["time"] <= now]
    rng = np.random.default_rng(2)
    skewed = data.sample(frac=0.03, random_state=1)
    skewed = skewed.assign(time=skewed["time"] + pd.to_timedelta(
        rng.integers(-300, 300, len(skewed)), unit="s"))
    bad = pd.concat([data, data.sample(frac=0.1, random_state=2),
                     data.sample(frac=0.03, random_state=3).assign(value=np.nan), skewed])
    found, _ = detect(ref, now, bad)
    assert found == {}
