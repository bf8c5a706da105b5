"""Worker passes through a real InfluxDB: a scripted leak becomes an alert, KPIs are written,
a second pass changes nothing, an InfluxDB outage is ridden out, a restarted worker picks up
its readings snapshot (written hourly and at close), export round-trips."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.params import AnalysisParams
from analysis.pipeline import analyse
from analysis.source import load_snapshot, read_csv
from analysis.tracker import AlertTracker, Target
from analysis.worker import Worker, snapshot_path
from common.influx import InfluxClient, InfluxUnavailable
from common.localservices import InfluxDB
from common.settings import AnalysisSettings, InfluxSettings, get_settings
from simulator.incidents import Incident
from tests.analysis.simdata import START
from tests.analysis.test_source import Stored, store_simulation

LEAK_AT = START + timedelta(days=3, hours=5)
NOW = START + timedelta(days=4, hours=8)


@pytest.fixture
def leaky(influx: InfluxClient) -> Stored:
    incidents = [Incident(kind="background_leak", target="dma-v002-b1", start=LEAK_AT,
                          magnitude=0.10, relative=True)]
    return store_simulation(influx, 2, 30, 4.5, incidents=incidents)


def worker_for(influx: InfluxClient, stored: Stored, state: Path, *,
               own_client: bool = False, snapshot_interval_s: float = 3600.0) -> Worker:
    """``own_client``: the worker gets a client of its own (``close()`` closes it)."""
    if own_client:
        influx = InfluxClient(influx.settings)
    section = AnalysisSettings(state_db=state, api_url="", detail_h=24.0, reread_h=2.0,
                               snapshot_interval_s=snapshot_interval_s)
    return Worker(section, register=stored.county, params=AnalysisParams(), influx=influx,
                  tracker=AlertTracker(state, targets=(Target.INFLUX,)), api=None)


def test_a_pass_raises_the_scripted_leak_and_writes_kpis_and_the_alert_point(
        influx: InfluxClient, leaky: Stored, tmp_path: Path) -> None:
    worker = worker_for(influx, leaky, tmp_path / "alerts.sqlite3")
    report = worker.run_pass(NOW)
    assert report.refresh == "full"
    keys = {a.key for a in worker.tracker.open_alerts()}
    assert "night_flow:dma-v002" in keys and "night_flow:dma-v001" not in keys
    kpis = influx.query('SELECT "nrw_pct", "inflow_m3" FROM "dma_kpi" GROUP BY "dma"')
    assert {s.tags["dma"] for s in kpis} == {"dma-v001", "dma-v002"}
    assert influx.count("supply_outlook", "plan_level") == 2
    points = influx.query("SELECT \"key\" FROM \"alert\" WHERE \"kind\" = 'night_flow'")
    assert "night_flow:dma-v002" in {row["key"] for row in points[0].records()}
    assert report.influx.complete

    later = worker.run_pass(NOW + timedelta(minutes=15))
    assert later.refresh == "incremental"
    assert "night_flow:dma-v002" in {a.key for a in worker.tracker.open_alerts()}
    assert later.changes <= report.changes  # the leak is not raised twice
    worker.close()


def test_a_restarted_worker_reads_only_what_is_newer_than_its_snapshot_and_finds_the_same(
        influx: InfluxClient, leaky: Stored, tmp_path: Path) -> None:
    state = tmp_path / "restarted" / "alerts.sqlite3"
    state.parent.mkdir()
    before = worker_for(influx, leaky, state, own_client=True)
    assert before.run_pass(NOW - timedelta(hours=3)).refresh == "full"
    before.close()  # waits for the snapshot
    assert snapshot_path(state).exists()

    restarted = worker_for(influx, leaky, state, own_client=True)
    report = restarted.run_pass(NOW)
    assert report.refresh == "restored"
    fresh_state = tmp_path / "fresh" / "alerts.sqlite3"
    fresh_state.parent.mkdir()
    fresh = worker_for(influx, leaky, fresh_state, own_client=True)
    assert fresh.run_pass(NOW).refresh == "full"

    def found(worker: Worker) -> list[tuple[str, str, str]]:
        analysis = analyse(worker.cache.frame, leaky.county, worker.params, NOW)
        return sorted((f.kind, f.subject, f.severity) for f in analysis.findings)

    assert found(restarted) == found(fresh)
    assert ("night_flow", "dma-v002") in {f[:2] for f in found(restarted)}
    assert ({a.key for a in restarted.tracker.open_alerts()}
            == {a.key for a in fresh.tracker.open_alerts()})
    restarted.close()
    fresh.close()


def test_the_snapshot_is_written_at_the_first_pass_then_hourly_and_at_close(
        influx: InfluxClient, leaky: Stored, tmp_path: Path) -> None:
    state = tmp_path / "alerts.sqlite3"
    worker = worker_for(influx, leaky, state, own_client=True)

    def saved_until(moment: datetime) -> datetime:
        """Pass at ``moment``; the end of the snapshot on disk after it."""
        worker.run_pass(moment)
        worker.cache.wait()
        _, meta = load_snapshot(snapshot_path(state))
        return datetime.fromisoformat(meta["read_until"])

    first = saved_until(NOW - timedelta(hours=2))
    assert saved_until(NOW - timedelta(hours=1, minutes=15)) == first
    assert saved_until(NOW - timedelta(hours=1)) > first  # an hour after the last save
    hourly = saved_until(NOW - timedelta(minutes=45))
    worker.close()
    _, meta = load_snapshot(snapshot_path(state))
    assert datetime.fromisoformat(meta["read_until"]) > hourly  # the last pass, at close

    every = worker_for(influx, leaky, tmp_path / "every.sqlite3", own_client=True,
                       snapshot_interval_s=0)
    every.run_pass(NOW)
    every.run_pass(NOW + timedelta(minutes=15))
    every.cache.wait()
    assert len(every.cache.snapshot_writes) == 2
    every.close()
    assert len(every.cache.snapshot_writes) == 2  # nothing new to save at close


def test_a_worker_with_a_corrupt_snapshot_reads_everything(
        influx: InfluxClient, leaky: Stored, tmp_path: Path) -> None:
    state = tmp_path / "alerts.sqlite3"
    snapshot_path(state).write_bytes(b"PK\x03\x04 half a zip")
    worker = worker_for(influx, leaky, state, own_client=True)
    report = worker.run_pass(NOW)
    assert report.refresh == "full"
    assert "night_flow:dma-v002" in {a.key for a in worker.tracker.open_alerts()}
    worker.close()
    again = worker_for(influx, leaky, state, own_client=True)
    # the next start uses the snapshot this worker wrote
    assert again.run_pass(NOW + timedelta(minutes=15)).refresh == "restored"
    again.close()


def test_a_pass_during_an_influxdb_outage_fails_cleanly_and_the_next_one_works(
        influxdb: InfluxDB, influx: InfluxClient, tmp_path: Path) -> None:
    stored = store_simulation(influx, 1, 10, 2.0)
    worker = worker_for(influx, stored, tmp_path / "alerts.sqlite3")
    influxdb.stop()
    with pytest.raises(InfluxUnavailable):
        worker.run_pass(stored.end)
    influxdb.start()
    assert worker.run_pass(stored.end).rows > 0
    worker.close()


def test_export_writes_the_long_csv_the_offline_command_reads(
        influx_settings: InfluxSettings, influx: InfluxClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stored = store_simulation(influx, 1, 10, 1.0)
    register = tmp_path / "register.json"
    stored.county.write(register)
    monkeypatch.setenv("RURALWATER_INFLUX__URL", influx_settings.url)
    monkeypatch.setenv("RURALWATER_INFLUX__DATABASE", influx_settings.database)
    get_settings.cache_clear()
    out = tmp_path / "export.csv"
    try:
        code = main(["--register", str(register), "export", "--since", START.isoformat(),
                     "--until", (stored.end + timedelta(seconds=1)).isoformat(), "--out",
                     str(out), "--raw"])
    finally:
        get_settings.cache_clear()
    assert code == 0
    exported = read_csv(out)
    assert set(exported["field"]) - set(stored.readings["field"]) == {"clock_offset_s"}
    exported = exported[exported["field"] != "clock_offset_s"]  # stored, not in messages
    assert len(exported) == len(stored.readings)
    assert set(exported["kind"]) == set(stored.readings["kind"])
