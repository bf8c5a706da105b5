"""Reading InfluxDB into the long format: equal to the simulator's readings, chunked, cached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.source import (
    InfluxSource,
    ReadingCache,
    default_plan,
    dma_groups,
    parse_csv,
    read_csv,
    wide_to_long,
    write_csv,
)
from common.contract import TelemetryMessage
from common.influx import InfluxClient, InfluxRejected
from common.register import County
from common.schema import reading_line
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident
from simulator.messages import MessageBuilder, message_stream
from tests.analysis.simdata import START, long_rows

KEY = ["time", "device", "kind", "field"]


@dataclass
class Stored:
    county: County
    readings: pd.DataFrame  # what the simulator sent, long format
    end: datetime


def store_simulation(influx: InfluxClient, villages: int, households: int, days: float, *,
                     incidents: list[Incident] | None = None, seed: int = 7) -> Stored:
    """Simulate, write every telemetry message to InfluxDB as the collector would."""
    county = build_county(seed, villages, households)
    simulation = CountySimulation(county, incidents or [], START, seed)
    builder = MessageBuilder(county, seed)
    end = START + timedelta(days=days)
    rows: list[tuple[str, str, str, str, float]] = []
    lines: list[str] = []
    for message in message_stream(simulation, builder, end):
        if not message.topic.endswith("/telemetry"):
            continue
        rows.extend(long_rows(message.payload))
        telemetry = TelemetryMessage.model_validate_json(message.payload)
        lines.extend(reading_line(r, telemetry.gateway) for r in telemetry.readings)
        if len(lines) >= 20_000:
            influx.write_lines(lines)
            lines.clear()
    influx.write_lines(lines)
    frame = pd.DataFrame(rows, columns=["time", "device", "kind", "field", "value"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return Stored(county, frame, end)


@pytest.fixture
def stored(influx: InfluxClient) -> Stored:
    return store_simulation(influx, 2, 12, 2.0)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.astype({"device": str, "kind": str, "field": str,
                        "time": "datetime64[ns, UTC]"})
    return out.sort_values(KEY).reset_index(drop=True)


def test_raw_points_come_back_exactly_and_meter_volumes_hourly(
        influx: InfluxClient, stored: Stored) -> None:
    source = InfluxSource(influx, stored.county, detail=timedelta(days=5), max_points=2000)
    got = plain(source.read(START, stored.end + timedelta(minutes=1)))
    sent = plain(stored.readings)
    for kind in ("dma_inflow", "pump", "tank", "quality"):
        mine, theirs = got[got["kind"] == kind], sent[sent["kind"] == kind]
        assert len(mine) == len(theirs), kind
        np.testing.assert_array_equal(mine["time"], theirs["time"])
        np.testing.assert_allclose(mine["value"], theirs["value"], rtol=1e-12)
    volumes = got[(got["kind"] == "meter") & (got["field"] == "volume_m3")]
    expected = sent[(sent["kind"] == "meter") & (sent["field"] == "volume_m3")]
    assert len(volumes) == len(expected)  # meters read on the hour: one per bucket
    merged = volumes.merge(expected, on=KEY, suffixes=("", "_sent"))
    assert len(merged) == len(expected)
    np.testing.assert_allclose(merged["value"], merged["value_sent"], rtol=1e-12)


def test_meter_states_are_the_abnormal_readings_and_each_meters_latest(
        influx: InfluxClient) -> None:
    incidents = [Incident(kind="low_battery", target="v001-h0003",
                          start=START + timedelta(hours=6), magnitude=48)]
    stored = store_simulation(influx, 1, 10, 1.0, incidents=incidents)
    got = plain(InfluxSource(influx, stored.county).read(START, stored.end + timedelta(seconds=1)))
    states = got[(got["kind"] == "meter") & (got["field"] == "battery_low")]
    low = states[states["value"] == 1.0].drop_duplicates(KEY)  # also a chunk's latest
    meter = next(h.meter for h in stored.county.households if h.id == "v001-h0003")
    assert set(low["device"]) == {meter}
    sent = plain(stored.readings)
    sent_low = sent[(sent["field"] == "battery_low") & (sent["value"] == 1.0)]
    assert len(low) == len(sent_low)  # every abnormal reading, none lost
    # Normal meters contribute their latest reading per chunk (day) only.
    assert states.groupby("device").size().drop(meter).le(2).all()
    last_sent = sent[sent["field"] == "valve"].groupby("device")["time"].max()
    last_got = got[got["field"] == "valve"].groupby("device")["time"].max()
    pd.testing.assert_series_equal(last_got, last_sent)


def test_history_outside_the_detail_window_is_hourly_means_at_the_half_hour(
        influx: InfluxClient, stored: Stored) -> None:
    source = InfluxSource(influx, stored.county, detail=timedelta(hours=12))
    got = plain(source.read(START, stored.end))
    boundary = source.detail_start(stored.end)
    old = got[(got["kind"] == "tank") & (got["time"] < boundary)]
    assert (old["time"].dt.minute == 30).all()
    sent = stored.readings
    tank = sent[(sent["kind"] == "tank") & (sent["time"] < boundary)]
    expected = (tank.assign(time=tank["time"].dt.floor("h") + pd.Timedelta(minutes=30))
                .groupby(KEY)["value"].mean().reset_index())
    merged = old.merge(expected, on=KEY, suffixes=("", "_sent"))
    assert len(merged) == len(old) == len(expected)
    np.testing.assert_allclose(merged["value"], merged["value_sent"], rtol=1e-9)
    assert not got[(got["field"] == "running") & (got["time"] < boundary)].shape[0]


def test_an_incremental_refresh_equals_a_fresh_read(influx: InfluxClient, stored: Stored
                                                    ) -> None:
    source = InfluxSource(influx, stored.county, detail=timedelta(hours=12))
    cache = ReadingCache(source, lookback=timedelta(days=1.5), reread=timedelta(hours=2),
                         reload=timedelta(days=1))
    first = stored.end - timedelta(hours=9)
    cache.refresh(first)
    cached = plain(cache.refresh(stored.end))
    assert cache.last_refresh == "incremental"
    fresh = plain(source.read(stored.end - timedelta(days=1.5), stored.end))
    # Meter state rows differ by design (each read adds a latest reading): compare the rest.
    states = {"valve", "battery_low", "tamper", "status", "balance_yuan"}
    mine = cached[~cached["field"].isin(states)].reset_index(drop=True)
    theirs = fresh[~fresh["field"].isin(states)].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine[KEY], theirs[KEY])
    np.testing.assert_allclose(mine["value"], theirs["value"], rtol=1e-9)


def test_passes_with_rolling_rereads_keep_the_cache_equal_to_a_fresh_read(
        influx: InfluxClient, stored: Stored) -> None:
    source = InfluxSource(influx, stored.county, detail=timedelta(hours=12))
    cache = ReadingCache(source, lookback=timedelta(days=1.5), reread=timedelta(hours=2),
                         reload=timedelta(hours=6))  # re-reads many pieces a pass
    moment = stored.end - timedelta(hours=21)
    cache.refresh(moment)
    reread = 0
    while moment < stored.end:
        moment = min(stored.end, moment + timedelta(hours=3))
        cache.refresh(moment)
        reread += cache.last_reread
    assert reread >= source.parts * 2  # the cursor went through more than one day
    cached = plain(cache.frame)
    fresh = plain(source.read(stored.end - timedelta(days=1.5), stored.end))
    states = {"valve", "battery_low", "tamper", "balance_yuan"}
    mine = cached[~cached["field"].isin(states)].reset_index(drop=True)
    theirs = fresh[~fresh["field"].isin(states)].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine[KEY], theirs[KEY])
    np.testing.assert_allclose(mine["value"], theirs["value"], rtol=1e-9)
    assert cache.frame["time"].is_monotonic_increasing


def test_meter_queries_are_split_so_no_answer_exceeds_the_point_bound() -> None:
    county = build_county(3, 6, 40)
    groups = dma_groups(county, hours=24, max_points=24 * 100)
    assert sorted(d for group in groups for d in group) == sorted(d.id for d in county.dmas)
    per_dma = pd.Series([h.dma for h in county.households]).value_counts()
    for group in groups:
        assert len(group) == 1 or per_dma[group].sum() <= 100
    assert dma_groups(None, 24, 1000) == [[]]
    assert any(s.per_dma for s in default_plan())


def test_the_offline_csv_round_trips(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "time": pd.to_datetime(["2026-06-01T00:00:00Z", "2026-06-01T01:00:00.250Z"],
                               utc=True, format="ISO8601"),
        "device": ["78330011223344", "dma-v001-in"], "kind": ["meter", "dma_inflow"],
        "field": ["volume_m3", "flow_m3h"], "value": [12345.678901, 3.25]})
    path = tmp_path / "readings.csv"
    assert write_csv(frame, path) == 2
    back = read_csv(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["device"].iloc[0] == "78330011223344"  # ids stay strings


def test_influxdb_csv_answers_parse_with_nulls_booleans_and_escaped_tags(
        influx: InfluxClient) -> None:
    influx.write_lines([
        'pump,device=p-1 running=true,frequency_hz=50.0,fault_code=3i 1000',
        'pump,device=p-1 running=false 2000',
        'pump,device=p\\,2 frequency_hz=49.5 2000',
    ])
    body = influx.query_csv('SELECT "running", "frequency_hz", "fault_code" FROM "pump" '
                            'GROUP BY "device"')
    wide = parse_csv(body, "pump")
    assert list(wide.columns) == ["time", "device", "running", "frequency_hz", "fault_code"]
    assert set(wide["device"]) == {"p-1", "p,2"}
    long = wide_to_long(wide, "pump").astype({"device": str, "field": str})
    got = {(row.time.value // 1_000_000, row.device, row.field): row.value
           for row in long.itertuples()}
    assert got == {(1000, "p-1", "running"): 1.0, (1000, "p-1", "frequency_hz"): 50.0,
                   (1000, "p-1", "fault_code"): 3.0, (2000, "p-1", "running"): 0.0,
                   (2000, "p,2", "frequency_hz"): 49.5}
    assert parse_csv(influx.query_csv('SELECT "running" FROM "pump" WHERE time > now()'),
                     "pump").empty
    with pytest.raises(InfluxRejected):
        influx.query_csv("SELEKT nonsense")


def _cache(source: InfluxSource, snapshot: Path | None) -> ReadingCache:
    return ReadingCache(source, lookback=timedelta(days=1.5), reread=timedelta(hours=2),
                        reload=timedelta(days=1), snapshot=snapshot)


def _saved_cache(source: InfluxSource, snapshot: Path, end: datetime) -> ReadingCache:
    """A cache refreshed up to ``end`` whose snapshot is written (the write waited for)."""
    cache = _cache(source, snapshot)
    cache.refresh(end)
    cache.save()
    cache.wait()
    return cache


def test_a_cache_restored_from_its_snapshot_refreshes_as_the_one_that_kept_running(
        influx: InfluxClient, stored: Stored, tmp_path: Path) -> None:
    source = InfluxSource(influx, stored.county, detail=timedelta(hours=12))
    snapshot = tmp_path / "readings.npz"
    running = _saved_cache(source, snapshot, stored.end - timedelta(hours=9))
    assert snapshot.exists() and len(running.snapshot_writes) == 1
    restarted = _cache(source, snapshot)
    after_restart = plain(restarted.refresh(stored.end))
    assert restarted.last_refresh == "restored"
    kept_running = plain(running.refresh(stored.end))
    assert running.last_refresh == "incremental"
    pd.testing.assert_frame_equal(after_restart, kept_running)
    # and the restored cache keeps going incrementally
    restarted.refresh(stored.end + timedelta(minutes=15))
    assert restarted.last_refresh == "incremental"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other_plan"])
def test_an_unusable_snapshot_falls_back_to_a_full_read(
        influx: InfluxClient, stored: Stored, tmp_path: Path, damage: str,
        caplog: pytest.LogCaptureFixture) -> None:
    source = InfluxSource(influx, stored.county, detail=timedelta(hours=12))
    snapshot = tmp_path / "readings.npz"
    _saved_cache(source, snapshot, stored.end - timedelta(hours=9))
    if damage == "truncated":
        snapshot.write_bytes(snapshot.read_bytes()[:5000])
    elif damage == "garbage":
        snapshot.write_bytes(b"not a snapshot")
    else:
        source = InfluxSource(influx, stored.county, detail=timedelta(hours=6))
    cache = _cache(source, snapshot)
    with caplog.at_level("WARNING", logger="analysis.source"):
        got = plain(cache.refresh(stored.end))
    assert cache.last_refresh == "full"
    assert "not used" in caplog.text
    fresh = plain(source.read(stored.end - timedelta(days=1.5), stored.end))
    pd.testing.assert_frame_equal(got, fresh)


def test_a_reading_replayed_late_is_picked_up_by_the_rolling_reread_within_reload(
        influx: InfluxClient, stored: Stored) -> None:
    source = InfluxSource(influx, stored.county, detail=timedelta(hours=12))
    cache = _cache(source, None)  # lookback 1.5 days, reread 2 h, reload 1 day
    moment = stored.end - timedelta(hours=3)
    cache.refresh(moment)
    # a gateway's outbox replays a reading from 8 h before: older than the reread window
    late = START + timedelta(hours=40, minutes=5)
    inflow = stored.county.dmas[0].inflow_meter
    influx.write_lines([f"dma_inflow,device={inflow} flow_m3h=123.5 "
                        f"{int(late.timestamp() * 1000)}"])

    def found() -> bool:
        rows = cache.frame
        return bool(((rows["time"] == pd.Timestamp(late)) & (rows["device"] == inflow)
                     & (rows["value"] == 123.5)).any())

    passes = 0
    reread = 0
    while not found():
        assert passes < 12, "not re-read within reload (24 h)"
        moment += timedelta(hours=2)
        cache.refresh(moment)
        assert cache.last_refresh == "incremental"
        reread += cache.last_reread
        passes += 1
    assert passes > 1  # not a full re-read: a few pieces a pass
    assert reread <= 2 * source.parts * 3
