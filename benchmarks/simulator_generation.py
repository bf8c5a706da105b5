"""Simulator generation rate: a full-county simulated day as wire bytes, against a baseline.

Run: ``.venv/bin/python benchmarks/simulator_generation.py [--villages 200] [--hours 24]
[--repeat 3] [--json out.json]``.

Measures, for the full county of domain.md (200 villages, ~60,000 meters, default
scenario), the wall time to step the physics and build every message of ``--hours``
simulated hours (``simulator.messages``: meters formatted from per-meter fragments), and,
as the baseline, the same readings built the obvious way for one simulated hour: a pydantic
``MeterReading`` per reading inside a ``TelemetryMessage`` dumped to JSON. Target: a
full-county day in well under 60 s on one core (a day per minute of the demo at full scale).
Prints the median of ``--repeat`` rounds; no MQTT or InfluxDB is involved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.contract import MeterReading, TelemetryMessage  # noqa: E402
from simulator.county import build_county  # noqa: E402
from simulator.engine import CountySimulation  # noqa: E402
from simulator.incidents import default_scenario  # noqa: E402
from simulator.messages import MessageBuilder, message_stream  # noqa: E402

START = datetime(2026, 7, 1, tzinfo=UTC)


def generate(villages: int, hours: float) -> dict[str, float]:
    county = build_county(20260701, villages)
    simulation = CountySimulation(county, default_scenario(county, START, hours / 24, 1),
                                  START, 1)
    builder = MessageBuilder(county, 1)
    started = time.perf_counter()
    messages = readings = size = 0
    for item in message_stream(simulation, builder, START + timedelta(hours=hours)):
        messages += 1
        readings += sum(item.readings.values())
        size += len(item.payload)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "messages": messages, "readings": readings,
            "readings_per_s": readings / wall, "megabytes": size / 1e6,
            "meters": len(county.households)}


def pydantic_baseline(villages: int) -> dict[str, float]:
    """One hour of meter readings built as pydantic models per reading, then dumped."""
    county = build_county(20260701, villages)
    simulation = CountySimulation(county, [], START, 1)
    states = next(simulation.states(START + timedelta(minutes=5)))
    started = time.perf_counter()
    by_village: dict[str, list[MeterReading]] = {}
    for h, household in enumerate(county.households):
        by_village.setdefault(household.village, []).append(MeterReading(
            device=household.meter, time=states.time, village=household.village,
            dma=household.dma, volume_m3=round(float(states.meter_volume_m3[h]), 2),
            balance_yuan=round(float(states.balance_yuan[h]), 2),
            valve="open" if states.valve_open[h] else "closed"))
    size = 0
    for village, readings in by_village.items():
        for first in range(0, len(readings), 60):
            message = TelemetryMessage(gateway=f"gw-{village}", seq=first, sent_at=states.time,
                                       readings=readings[first:first + 60])
            size += len(message.model_dump_json())
    wall = time.perf_counter() - started
    return {"wall_s": wall, "readings": len(county.households),
            "readings_per_s": len(county.households) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--villages", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rounds = [generate(args.villages, args.hours) for _ in range(args.repeat)]
    baselines = [pydantic_baseline(args.villages) for _ in range(args.repeat)]
    wall = statistics.median(r["wall_s"] for r in rounds)
    rate = statistics.median(r["readings_per_s"] for r in rounds)
    base_rate = statistics.median(b["readings_per_s"] for b in baselines)
    first = rounds[0]
    print(f"county: {args.villages} villages, {first['meters']:.0f} meters; "  # noqa: T201
          f"{args.hours:g} simulated hours: {first['messages']:.0f} messages, "
          f"{first['readings']:.0f} readings, {first['megabytes']:.0f} MB of JSON")
    print(f"simulator (physics + messages): {wall:6.1f} s   {rate:>10,.0f} readings/s")  # noqa: T201
    print(f"baseline (pydantic per reading, meters only): "  # noqa: T201
          f"{base_rate:>10,.0f} readings/s  -> simulator is {rate / base_rate:.1f}x")
    day_s = wall * 24 / args.hours
    verdict = "PASS" if day_s < 60 else "FAIL"
    print(f"full-county day: {day_s:.1f} s (target < 60 s): {verdict}")  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "baseline": baselines}, indent=1))
    sys.exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main()
