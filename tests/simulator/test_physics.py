"""Physics sanity with explicit tolerances: demand, leakage, supply, prepaid meters, quality.

Leak sizes are measured by running the same seeded county twice, with and without the
incident: the random draws are identical, so the difference is the incident alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from simulator.county import build_county
from simulator.engine import OUTLET_LIMIT_MGL, PUMP_FAULT_CODE, STEP_H, CountySimulation
from simulator.incidents import Incident, ScenarioError
from tests.simulator.helpers import START, local_hour, simulate


def series(states, name: str, index: int = 0) -> np.ndarray:
    return np.array([getattr(s, name)[index] for s in states])


def test_inflow_exceeds_metered_consumption_and_meters_under_register_slightly() -> None:
    county = build_county(8, 3, 80)
    simulation, states = simulate(county, [], 2)
    first, last = states[0], states[-1]
    inflow = last.inflow_volume_m3 - first.inflow_volume_m3
    metered = np.bincount(simulation.hh_village,
                          last.meter_volume_m3 - first.meter_volume_m3, 3)
    assert np.all(inflow > metered)
    leak_share = 1 - metered / inflow
    assert np.all((leak_share > 0.04) & (leak_share < 0.2))
    delivered = simulation.hh_true.sum()
    registered = simulation.hh_registered.sum()
    assert 0.97 < registered / delivered < 0.99


def test_night_minimum_falls_between_two_and_four_local_time() -> None:
    county = build_county(4, 1, 200)
    _, states = simulate(county, [], 3)
    hours = np.array([local_hour(s.time, county) for s in states])
    inflow = series(states, "inflow_m3h")
    hourly = [inflow[(hours > h) & (hours <= h + 1)].mean() for h in range(24)]
    assert int(np.argmin(hourly)) in (2, 3)
    evening = np.mean(hourly[18:21])
    assert min(hourly) < 0.4 * evening


def test_per_capita_use_is_within_forty_to_eighty_litres_a_day() -> None:
    county = build_county(6, 2, 150)
    equinox = datetime(2026, 4, 10, tzinfo=UTC)  # seasonal factor near 1
    simulation, _ = simulate(county, [], 7, start=equinox)
    before = CountySimulation(county, [], equinox, 1).hh_true
    litres = (simulation.hh_true - before) * 1000 / 7 / simulation.hh_persons
    assert 40 <= litres.mean() <= 80
    assert 0.8 < np.mean((litres > 30) & (litres < 100))


def test_summer_demand_exceeds_winter_demand() -> None:
    county = build_county(5, 1, 100)
    used = {}
    for season, start in (("summer", datetime(2026, 7, 10, tzinfo=UTC)),
                          ("winter", datetime(2026, 1, 10, tzinfo=UTC))):
        simulation = CountySimulation(county, [], start, 5)
        before = simulation.hh_true.sum()
        for _ in simulation.states(start + timedelta(days=2)):
            pass
        used[season] = simulation.hh_true.sum() - before
    assert used["summer"] > 1.4 * used["winter"]


def night_mean(states, county, name="inflow_m3h") -> float:
    values = [getattr(s, name)[0] for s in states if 2 <= local_hour(s.time, county) < 4]
    return float(np.mean(values))


@pytest.mark.parametrize("magnitude, relative", [(0.03, True), (2.0, False)])
def test_a_scripted_leak_raises_night_inflow_by_the_injected_amount(magnitude, relative):
    county = build_county(9, 1, 150)
    branch = county.dmas[0].branches[1].id
    leak = Incident(kind="background_leak" if relative else "burst", target=branch,
                    start=START + timedelta(days=1), magnitude=magnitude, relative=relative)
    _, baseline = simulate(county, [], 2)
    _, leaking = simulate(county, [leak], 2)
    second_night = [s for s in leaking if s.time > leak.start]
    second_night_base = [s for s in baseline if s.time > leak.start]
    raised = (night_mean(second_night, county) - night_mean(second_night_base, county))
    assert raised == pytest.approx(leak.effect["leak_m3h"], rel=0.02)
    if relative:
        mean_inflow = county.dmas[0].background_leak_m3h + sum(
            h.persons for h in county.households) * 55 / 24e3
        assert leak.effect["leak_m3h"] == pytest.approx(0.03 * mean_inflow, rel=0.01)
        assert leak.effect["share_of_mean_inflow"] == pytest.approx(0.03)
    else:
        assert leak.effect["leak_m3h"] == 2.0
    assert leak.effect["dma"] == "dma-v001"


def test_a_customer_leak_flows_through_the_meter_all_night() -> None:
    county = build_county(2, 1, 20)
    household = county.households[3]
    leak = Incident(kind="customer_leak", target=household.id, start=START, magnitude=0.05)
    _, baseline = simulate(county, [], 1)
    _, leaking = simulate(county, [leak], 1)
    extra = leaking[-1].meter_volume_m3[3] - baseline[-1].meter_volume_m3[3]
    assert extra == pytest.approx(0.05 * 24 * 0.98, rel=0.015)
    assert leak.effect["registered_m3"] == pytest.approx(extra, rel=0.01)


def test_chlorine_drops_below_the_limits_after_a_chlorinator_failure_and_recovers() -> None:
    county = build_county(4, 1, 20)
    outlet = next(i for i, a in enumerate(county.analysers) if a.site == "outlet")
    tap = next(i for i, a in enumerate(county.analysers) if a.site == "tap")
    failure = Incident(kind="chlorinator_failure", target="v001",
                       start=START + timedelta(hours=6), end=START + timedelta(hours=18))
    _, states = simulate(county, [failure], 1.5)

    def during(a: int, after_h: float, until_h: float) -> np.ndarray:
        return np.array([s.free_chlorine_mgl[a] for s in states
                         if START + timedelta(hours=after_h) <= s.time
                         < START + timedelta(hours=until_h)])

    assert np.all((during(outlet, 0, 6) > 0.5) & (during(outlet, 0, 6) < 1.0))
    assert np.all(during(tap, 0, 6) < during(outlet, 0, 6))
    assert np.all(during(tap, 0, 6) > 0.1)
    assert np.all(during(outlet, 9, 18) < OUTLET_LIMIT_MGL)
    assert np.all(during(tap, 14, 18) < 0.05)
    assert np.all(during(outlet, 24, 36) > 0.5)
    below = datetime.fromisoformat(str(failure.effect["outlet_below_limit_at"]))
    assert failure.start < below < failure.start + timedelta(hours=3)
    assert "tap_below_limit_at" in failure.effect


def test_quality_stays_in_its_normal_ranges() -> None:
    county = build_county(4, 13, 5)
    _, states = simulate(county, [], 1)
    turbidity = np.array([s.turbidity_ntu for s in states])
    ph = np.array([s.ph for s in states])
    assert 0.15 < np.median(turbidity) < 0.5 and turbidity.max() < 1.0
    assert ph.min() > 7.0 and ph.max() < 8.0


def test_demand_surge_draws_the_well_down_and_runs_the_tank_dry_at_the_recorded_time():
    county = build_county(7, 1, 200)
    surge = Incident(kind="demand_surge", target="v001", start=START + timedelta(hours=2),
                     magnitude=2.5, aquifer_decline_m_per_day=3.0)
    _, states = simulate(county, [surge], 3)
    dry_at = datetime.fromisoformat(str(surge.effect["tank_dry_at"]))
    capacity = county.tanks[0].capacity_m3
    before = [s.tank_volume_m3[0] for s in states if s.time < dry_at]
    at = next(s for s in states if s.time == dry_at)
    assert min(before) > 0.01 * capacity
    assert at.tank_volume_m3[0] <= 0.01 * capacity
    noon = [s.well_level_m[0] for s in states if s.time.hour == 4 and s.time.minute == 0]
    assert noon[-1] > noon[0] + 5  # deeper: metres below ground
    assert float(surge.effect["unserved_m3"]) > 0
    assert float(surge.effect["deepest_well_level_m"]) >= max(noon)


def test_pumps_run_by_tank_level_within_allowed_hours_with_consistent_drive_values() -> None:
    county = build_county(3, 2, 150)
    simulation, states = simulate(county, [], 2)
    running = np.array([s.pump_running for s in states])
    for w, well in enumerate(county.wells):
        hours = running[:, w].sum() * STEP_H
        lead = well.id.endswith("-1")  # a second (lag) well starts only when the tank runs low
        assert hours <= 2 * well.allowed_hours_per_day + STEP_H
        assert hours > 0 or not lead
        run_hours = series(states, "pump_run_hours", w)
        assert run_hours[-1] - run_hours[0] == pytest.approx(hours - running[0, w] * STEP_H)
    on = running
    frequency = np.array([s.pump_frequency_hz for s in states])
    current = np.array([s.pump_current_a for s in states])
    pressure = np.array([s.pump_pressure_mpa for s in states])
    flow = np.array([s.pump_flow_m3h for s in states])
    assert np.all((frequency[on] > 29) & (frequency[on] <= 50.5))
    assert np.all((current[on] > 0.5) & (current[on] < 30))
    assert np.all((pressure[on] > 0.1) & (pressure[on] < 0.6))
    assert np.all(frequency[~on] == 0) and np.all(flow[~on] == 0)
    level = np.array([s.tank_level_m for s in states])
    assert np.all((level >= 0) & (level <= np.array([t.height_m for t in county.tanks])))


def test_a_pump_fault_stops_the_pump_and_reports_its_code() -> None:
    county = build_county(3, 1, 150)
    fault = Incident(kind="pump_fault", target=county.wells[0].id, start=START,
                     end=START + timedelta(hours=6))
    _, states = simulate(county, [fault], 0.5)
    during = [s for s in states if s.time < fault.end]
    assert all(not s.pump_running[0] and s.pump_fault_code[0] == PUMP_FAULT_CODE
               for s in during)
    assert states[-1].pump_fault_code[0] == 0
    codes = [(e.code, e.active) for s in states for e in s.events]
    assert codes.count(("pump_fault", True)) == 1 and codes.count(("pump_fault", False)) == 1


def test_zero_balance_closes_the_valve_raises_an_event_and_a_top_up_reopens_it() -> None:
    county = build_county(2, 1, 30)
    monitored = next(i for i, h in enumerate(county.households) if h.monitored)
    household = county.households[monitored]
    incident = Incident(kind="zero_balance", target=household.id,
                        start=START + timedelta(hours=2), end=START + timedelta(hours=8))
    _, states = simulate(county, [incident], 0.5)
    closed = [s for s in states if not s.valve_open[monitored]]
    assert closed[0].time == incident.start and closed[-1].time < incident.end
    assert all(s.balance_yuan[monitored] <= 0 for s in closed)
    flat = {round(float(s.meter_volume_m3[monitored]), 6) for s in closed}
    assert len(flat) == 1  # no water through a closed valve
    events = [e for s in states for e in s.events if e.device == household.meter]
    assert [(e.code, e.active, e.severity) for e in events] == [
        ("valve_closed", True, "critical"), ("valve_closed", False, "info")]
    assert incident.effect["valve_closed_at"] == incident.start.isoformat()
    assert incident.effect["valve_reopened_at"] == incident.end.isoformat()


def test_tamper_and_a_dead_battery_close_the_valve() -> None:
    county = build_county(2, 1, 30)
    tamper = Incident(kind="tamper", target=county.households[1].id,
                      start=START + timedelta(hours=1), end=START + timedelta(hours=2))
    battery = Incident(kind="low_battery", target=county.households[2].id,
                       start=START + timedelta(hours=1), magnitude=3.0)
    _, states = simulate(county, [tamper, battery], 0.5)
    by_time = {s.time: s for s in states}
    assert not by_time[START + timedelta(hours=1, minutes=30)].valve_open[1]
    assert by_time[START + timedelta(hours=2, minutes=30)].valve_open[1]
    assert by_time[START + timedelta(hours=3, minutes=55)].valve_open[2]
    assert by_time[START + timedelta(hours=3, minutes=55)].battery_low[2]
    assert not by_time[START + timedelta(hours=4, minutes=5)].valve_open[2]


def test_an_incident_on_an_unknown_target_is_refused() -> None:
    county = build_county(2, 1, 5)
    with pytest.raises(ScenarioError, match="no branch"):
        CountySimulation(county, [Incident(kind="burst", target="dma-v009-b1", start=START)],
                         START, 1)


def test_a_remote_close_command_holds_the_valve_until_an_open_command() -> None:
    county = build_county(2, 1, 10)
    meter = county.households[5].meter
    simulation = CountySimulation(county, [], START, 1)
    simulation.step()
    simulation.command_valve(meter, open_valve=False)
    closed = [simulation.step() for _ in range(12)]
    assert not any(s.valve_open[5] for s in closed)
    assert [(e.code, e.active) for e in closed[0].events] == [("valve_closed", True)]
    simulation.command_valve(meter, open_valve=True)
    reopened = simulation.step()
    assert reopened.valve_open[5]
    assert [(e.code, e.active) for e in reopened.events] == [("valve_closed", False)]


def test_balances_fall_with_use_close_the_valve_at_zero_and_top_ups_reopen_it() -> None:
    county = build_county(5, 1, 40)
    simulation = CountySimulation(county, [], START, 5)
    simulation.balance[:10] = 0.05  # a few buckets of water left
    states = list(simulation.states(START + timedelta(days=4)))
    balance = np.array([s.balance_yuan for s in states])
    volume = np.array([s.meter_volume_m3 for s in states])
    tariff = np.array([h.tariff_yuan_m3 for h in county.households])
    used = np.diff(volume, axis=0) * tariff
    topped = np.diff(balance, axis=0) > 0
    # Without a top-up, the balance falls by exactly the registered volume times the tariff.
    assert np.allclose(np.diff(balance, axis=0)[~topped], -used[~topped])
    valve = np.array([s.valve_open for s in states])
    closed_some_time = ~valve[:, :10].all(axis=0)
    assert closed_some_time.sum() >= 5
    assert np.all(balance[~valve] <= 0)
    assert topped[:, :10].any(axis=0).sum() >= 5
    assert valve[-1, :10].sum() >= 5  # most have paid and have water again
