"""The detection benchmark runs end to end on a tiny case, and its parts are right.

No timing is asserted; the figures belong to the full run (benchmarks/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from common.contract import TelemetryMessage
from common.schema import reading_point
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident
from simulator.messages import MessageBuilder, message_stream

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "detection.py"
START = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def detection() -> ModuleType:
    spec = importlib.util.spec_from_file_location("detection_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_a_tiny_case_and_prints_its_table_and_targets(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seeds", "1", "--villages", "3", "--households", "12",
         "--days", "4", "--every", "6", "--scenario",
         str(REPO / "benchmarks" / "detection_scenarios" / "smoke.yaml"),
         "--json", str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    # 0: every target passed, 1: some missed; either way the benchmark itself ran.
    assert done.returncode in (0, 1), done.stdout + done.stderr
    for text in ("leak 10%", "burst 50%", "customer leak", "chlorinator failure",
                 "false alarms", "per 100 DMA-days", "targets", "baseline"):
        assert text in done.stdout, done.stdout
    document = json.loads(results.read_text())
    assert {r["name"] for r in document["targets"]} >= {
        "bursts and leaks >= 5% of inflow found within 24 h",
        "false alarms <= 1 per 100 DMA-days"}
    analysis = document["systems"]["analysis"]
    labels = {o["label"] for o in analysis["outcomes"]}
    assert {"leak 10%", "burst 50%", "chlorinator failure", "demand surge"} <= labels
    assert analysis["dma_days"] > 0
    assert document["runs"][0]["clean"]["passes"] > 0


def rows_from_the_wire(villages: int, households: int, hours: float,
                       incidents: list[Incident]) -> set[tuple[object, ...]]:
    county = build_county(5, villages, households)
    simulation = CountySimulation(county, incidents, START, 5)
    builder = MessageBuilder(county, 5, missing_rate=0.0)
    rows: set[tuple[object, ...]] = set()
    for message in message_stream(simulation, builder, START + timedelta(hours=hours)):
        if not message.topic.endswith("/telemetry"):
            continue
        parsed = TelemetryMessage.model_validate_json(message.payload)
        for reading in parsed.readings:
            point = reading_point(reading, parsed.gateway)
            for name, value in point.fields.items():
                number = {"open": 0.0, "closed": 1.0, "fault": 2.0}.get(value, value) \
                    if isinstance(value, str) else float(value)
                rows.add((reading.time, reading.device, reading.kind, name,
                          round(float(number), 3)))
    return rows


def test_long_readings_are_what_the_gateways_would_publish(detection: ModuleType) -> None:
    county = build_county(5, 2, 6)
    household = county.households[1]
    incidents = [Incident(kind="zero_balance", target=household.id,
                          start=START + timedelta(hours=1)),
                 Incident(kind="meter_offline", target=county.households[2].id,
                          start=START + timedelta(hours=2))]
    simulation = CountySimulation(county, [i.model_copy(deep=True) for i in incidents],
                                  START, 5)
    recorder = detection.LongRecorder(county, missing_rate=0.0, seed=5)
    for states in simulation.states(START + timedelta(hours=3)):
        recorder.add(states)
    frame = recorder.frame()
    assert list(frame.columns) == ["time", "device", "kind", "field", "value"]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert frame["time"].is_monotonic_increasing
    ours = {(t.to_pydatetime(), d, k, f, round(float(v), 3))
            for t, d, k, f, v in frame.itertuples(index=False)}
    assert ours == rows_from_the_wire(2, 6, 3, incidents)
    valve = frame[(frame["device"] == household.meter) & (frame["field"] == "valve")]
    assert valve["value"].iloc[-1] == 1.0  # closed at zero balance
    assert [c.household for c in recorder.closures] == [household.id]
    offline = frame[frame["device"] == county.households[2].meter]
    assert not offline.empty and offline["time"].max() <= START + timedelta(hours=1)


def test_an_alarm_counts_for_the_incident_it_names_and_others_are_false_alarms(
        detection: ModuleType) -> None:
    start = START + timedelta(days=2)
    truth = detection.Truth("leak 5%", "background_leak",
                            {"dma": frozenset({"dma-v002"}), "village": frozenset({"v002"})},
                            start, None, start, share_of_inflow=0.05)
    found = detection.Episode("night_flow", "dma-v002", frozenset({"dma-v002", "v002"}),
                              start + timedelta(hours=15), start + timedelta(hours=18))
    early = detection.Episode("night_flow", "dma-v002", frozenset({"dma-v002"}),
                              start - timedelta(days=1), start - timedelta(hours=20))
    elsewhere = detection.Episode("burst", "dma-v003", frozenset({"dma-v003"}), start, start)
    passes = [START + timedelta(hours=3 * n) for n in range(40)]
    outcome = detection.score_incident(truth, [early, elsewhere, found], passes, 1,
                                       START + timedelta(days=5))
    assert outcome.detected and outcome.hours_to_detect == 18.0 and outcome.within_deadline
    county = build_county(1, 3, 2)
    false = detection.explain([early, elsewhere, found], [truth], county, {},
                              START + timedelta(days=5))
    assert false == [early, elsewhere]
    assert found.explained_by == "leak 5%"


def test_a_sized_surge_runs_the_tank_dry_about_when_asked(detection: ModuleType) -> None:
    county = build_county(2, 1, 80)
    template = detection.IncidentTemplate(label="surge", kind="demand_surge", village=1,
                                          start=timedelta(hours=6),
                                          dry_after=timedelta(days=4))
    scripted = detection.place_incidents([template], county, START, 2)
    run = detection.simulate(county, scripted, 2, START, 7)
    dry_at = run.tank_dry_at.get("tank-v001")
    assert dry_at is not None
    assert timedelta(days=2.5) < dry_at - (START + timedelta(hours=6)) < timedelta(days=5.5)
