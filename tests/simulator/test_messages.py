"""Messages: deterministic, contract-true, per-gateway sequenced, at the configured cadence."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from common.contract import Channel, EventMessage, TelemetryMessage, topic
from simulator.incidents import Incident, default_scenario
from simulator.messages import Intervals
from simulator.session import RunPlan
from tests.simulator.helpers import START, messages


def payloads(items):
    return [(m.topic, m.payload) for m in items]


def test_same_seed_gives_identical_messages_and_another_seed_does_not() -> None:
    _, first = messages(2, 20, 0.5, seed=11)
    _, again = messages(2, 20, 0.5, seed=11)
    _, other = messages(2, 20, 0.5, seed=12)
    assert payloads(first) == payloads(again)
    assert payloads(first) != payloads(other)


def test_every_message_kind_validates_against_the_wire_contract() -> None:
    from simulator.county import build_county

    county = build_county(3, 2, 30)
    incidents = default_scenario(county, START, 2, 3)
    _, items = messages(2, 30, 2, incidents=incidents)
    kinds: Counter[str] = Counter()
    codes: set[str] = set()
    for item in items:
        gateway = json.loads(item.payload)["gateway"]
        if item.topic == topic(gateway, Channel.TELEMETRY):
            parsed = TelemetryMessage.model_validate_json(item.payload)
            assert 1 <= len(parsed.readings) <= 60
            assert dict(Counter(r.kind for r in parsed.readings)) == item.readings
            kinds.update(r.kind for r in parsed.readings)
            for reading in parsed.readings:
                assert reading.village == gateway.removeprefix("gw-")
                if reading.kind == "meter":
                    assert reading.meter_clock is not None
                    assert reading.meter_clock.utcoffset() == timedelta(hours=8)
        else:
            assert item.topic == topic(gateway, Channel.EVENTS)
            parsed_events = EventMessage.model_validate_json(item.payload)
            assert len(parsed_events.events) == item.events
            codes |= {e.code for e in parsed_events.events}
    assert set(kinds) == {"meter", "pump", "tank", "dma_inflow", "quality"}
    assert {"valve_closed", "low_battery", "tamper", "pump_fault"} <= codes


def test_sequence_numbers_run_without_gaps_per_gateway_over_telemetry_and_events() -> None:
    from simulator.county import build_county

    county = build_county(3, 2, 20)
    tamper = Incident(kind="tamper", target=county.households[0].id,
                      start=START + timedelta(hours=3), end=START + timedelta(hours=5))
    _, items = messages(2, 20, 0.5, incidents=[tamper])
    seqs: dict[str, list[int]] = defaultdict(list)
    times: dict[str, list[datetime]] = defaultdict(list)
    for item in items:
        payload = json.loads(item.payload)
        assert (payload["gateway"], payload["seq"]) == (item.gateway, item.seq)
        seqs[item.gateway].append(item.seq)
        times[item.gateway].append(item.sim_time)
    assert sorted(seqs) == ["gw-v001", "gw-v002"]
    for gateway, numbers in seqs.items():
        assert numbers == list(range(len(numbers)))
        assert times[gateway] == sorted(times[gateway])
    assert any(item.topic.endswith("/events") and item.gateway == "gw-v001" for item in items)


def reading_times(items) -> dict[str, set[datetime]]:
    found: dict[str, set[datetime]] = defaultdict(set)
    for item in items:
        for reading in json.loads(item.payload).get("readings", []):
            found[reading["kind"]].add(datetime.fromisoformat(reading["time"]))
    return found


@pytest.mark.parametrize("intervals, minutes", [
    (None, {"meter": 60, "dma_inflow": 15, "pump": 5, "tank": 5, "quality": 10}),
    (Intervals(meter_min=15, inflow_min=5, pump_min=10, tank_min=30, quality_min=60),
     {"meter": 15, "dma_inflow": 5, "pump": 10, "tank": 30, "quality": 60}),
])
def test_each_kind_reports_at_its_interval(intervals, minutes) -> None:
    _, items = messages(1, 10, 0.5, missing_rate=0.0, intervals=intervals)
    end = START + timedelta(days=0.5)
    for kind, every in minutes.items():
        expected = {START + timedelta(minutes=m) for m in range(every, 12 * 60 + 1, every)}
        assert reading_times(items)[kind] == expected, kind
    assert all(START < m.sim_time <= end for m in items)


def test_intervals_must_be_multiples_of_the_step() -> None:
    with pytest.raises(ValueError, match="multiple of 5"):
        Intervals(meter_min=7)


def test_single_reading_mode_sends_the_same_readings_one_per_message() -> None:
    _, batched = messages(1, 70, 0.25, missing_rate=0.0)
    _, single = messages(1, 70, 0.25, missing_rate=0.0, batch_size=1)
    assert all(sum(m.readings.values()) == 1 for m in single)
    assert max(len(json.loads(m.payload)["readings"]) for m in batched) == 60

    def readings(items):
        return sorted(json.dumps(r, sort_keys=True) for m in items
                      for r in json.loads(m.payload)["readings"])

    assert readings(single) == readings(batched)


def test_a_small_deterministic_share_of_readings_goes_missing() -> None:
    _, complete = messages(2, 100, 1, missing_rate=0.0)
    _, lossy = messages(2, 100, 1, missing_rate=0.02)
    sent = sum(sum(m.readings.values()) for m in complete)
    lost = sent - sum(sum(m.readings.values()) for m in lossy)
    assert 0.01 * sent < lost < 0.03 * sent


def test_an_offline_meter_sends_nothing_while_it_is_offline() -> None:
    from simulator.county import build_county

    county = build_county(3, 1, 10)
    household = county.households[4]
    offline = Incident(kind="meter_offline", target=household.id,
                       start=START + timedelta(hours=2), end=START + timedelta(hours=6))
    _, items = messages(1, 10, 0.5, incidents=[offline], missing_rate=0.0)
    heard = {datetime.fromisoformat(r["time"]) for m in items
             for r in json.loads(m.payload).get("readings", [])
             if r.get("device") == household.meter}
    assert heard == {START + timedelta(hours=h) for h in (1, 6, 7, 8, 9, 10, 11, 12)}


def test_default_start_ends_the_run_near_now() -> None:
    plan = RunPlan(seed=1, villages=1, households_per_village=5, days=2.0, speed=0,
                   output_dir=None)  # type: ignore[arg-type]
    start = plan.resolved_start()
    now = datetime.now(UTC)
    assert now - timedelta(days=2, minutes=10) <= start <= now - timedelta(days=2) + \
        timedelta(minutes=1)
