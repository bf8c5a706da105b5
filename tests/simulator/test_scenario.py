"""Scenario files and the default scenario."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from simulator.county import build_county
from simulator.incidents import (
    TARGETS,
    Incident,
    ScenarioError,
    check_targets,
    default_scenario,
    load_scenario,
    write_incidents,
)
from tests.simulator.helpers import START, simulate

YAML = """
incidents:
  - {kind: background_leak, target: dma-v001-b2, start: PT6H, magnitude: 0.03, relative: true}
  - {kind: tamper, target: v001-h0003, start: "2026-06-01T10:00:00+08:00", end: 3600}
"""


def test_a_yaml_scenario_with_relative_times_loads_against_the_start(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(YAML)
    leak, tamper = load_scenario(path, START)
    assert leak.start == START + timedelta(hours=6) and leak.end is None
    assert leak.relative and leak.magnitude == 0.03
    assert tamper.start == START + timedelta(hours=2)  # 10:00 +08:00 is 02:00 UTC
    assert tamper.end == START + timedelta(hours=1)
    with pytest.raises(ScenarioError, match="end before start"):
        check_targets(build_county(1, 1, 5), [tamper])


def test_a_json_scenario_round_trips_with_its_effects(tmp_path: Path) -> None:
    incidents = [Incident(kind="burst", target="dma-v001-b1", start=START, magnitude=1.5,
                          effect={"leak_m3h": 1.5})]
    write_incidents(tmp_path / "incidents.json", incidents)
    assert load_scenario(tmp_path / "incidents.json") == incidents


def test_a_bad_scenario_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"kind": "meteor", "target": "v001", "start": "PT1H"}]')
    with pytest.raises(ScenarioError, match="bad.json"):
        load_scenario(path, START)
    path.write_text('[{"kind": "burst", "target": "x", "start": "PT1H"}]')
    with pytest.raises(ScenarioError, match="needs the simulation start"):
        load_scenario(path)


def test_the_default_scenario_covers_every_kind_and_measures_its_effects() -> None:
    county = build_county(20260701, 12, 60)
    incidents = default_scenario(county, START, 3, 20260701)
    assert {i.kind for i in incidents} == set(TARGETS)
    assert incidents == default_scenario(county, START, 3, 20260701)
    check_targets(county, incidents)
    simulate(county, incidents, 3)
    effect = {i.kind: i.effect for i in incidents}
    assert all("started_at" in e for e in effect.values())
    assert effect["burst"]["share_of_mean_inflow"] == 0.25
    assert effect["background_leak"]["share_of_mean_inflow"] == 0.05
    assert "tank_dry_at" in effect["demand_surge"]
    assert "valve_closed_at" in effect["zero_balance"]
    assert "outlet_below_limit_at" in effect["chlorinator_failure"]
    assert float(effect["turbidity_event"]["peak_ntu"]) > 3.0
