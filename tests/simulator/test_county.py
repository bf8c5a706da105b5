"""The county: the scale of domain.md at full size, deterministic, exported as register.json."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from simulator.county import County, build_county


def test_full_county_has_the_scale_of_the_domain() -> None:
    county = build_county(20260701, 200)
    assert 50_000 <= len(county.households) <= 70_000
    assert len(county.dmas) == len(county.gateways) == len(county.tanks) == 200
    assert 220 <= len(county.wells) <= 280
    assert 20 <= len(county.analysers) <= 80
    assert {a.site for a in county.analysers} == {"outlet", "tap"}
    assert len(county.townships) == 12
    assert 150_000 <= sum(v.population for v in county.villages) <= 200_000
    monitored = sum(v.monitored_households for v in county.villages)
    assert 0.07 < monitored / len(county.households) < 0.13
    meters = [h.meter for h in county.households]
    assert len(set(meters)) == len(meters)
    assert all(len(m) == 14 and m.isdigit() for m in meters)
    assert Counter(h.village for h in county.households) == {
        v.id: v.households for v in county.villages}


def test_ids_follow_the_naming_scheme() -> None:
    county = build_county(1, 1, 12)
    village = county.villages[0]
    assert (village.id, village.gateway, county.dmas[0].id, county.dmas[0].inflow_meter) == (
        "v001", "gw-v001", "dma-v001", "inflow-v001")
    assert county.households[0].id == "v001-h0001"
    assert county.wells[0].id == "pump-v001-1" and county.tanks[0].id == "tank-v001"
    assert county.dmas[0].branches[0].id == "dma-v001-b1"
    assert all(h.branch in {b.id for b in county.dmas[0].branches} for h in county.households)
    well = county.wells[0]
    assert well.static_level_m < well.intake_depth_m


def test_same_seed_builds_the_same_county_and_the_register_round_trips(tmp_path: Path) -> None:
    first = build_county(42, 5)
    assert first == build_county(42, 5)
    assert first != build_county(43, 5)
    first.write(tmp_path / "register.json")
    assert County.read(tmp_path / "register.json") == first


def test_a_county_needs_a_village_and_households() -> None:
    with pytest.raises(ValueError):
        build_county(1, 0)
    with pytest.raises(ValueError):
        build_county(1, 1, -3)
