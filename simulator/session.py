"""One simulator run end to end: build the county, script incidents, publish, write the truth.

Ground truth lands in ``output_dir``: ``register.json`` (the asset register),
``incidents.json`` (what was injected and its measured effect) and ``summary.json``
(what was published, per reading kind).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from simulator.county import County, build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident, default_scenario, load_scenario, write_incidents
from simulator.messages import Intervals, MessageBuilder, Outgoing, message_stream
from simulator.publisher import Progress, Publisher

log = logging.getLogger(__name__)


@dataclass
class RunPlan:
    seed: int
    villages: int
    households_per_village: int | None
    days: float
    speed: float
    output_dir: Path
    start: datetime | None = None
    single_reading: bool = False
    scenario: Path | None = None
    no_incidents: bool = False
    intervals: Intervals | None = None
    missing_rate: float = 0.005
    max_in_flight: int = 1000

    def resolved_start(self) -> datetime:
        if self.start is not None:
            return self.start
        # End near "now": the collector refuses readings stamped far in the future.
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        now -= timedelta(minutes=now.minute % 5)
        return now - timedelta(days=self.days)


@dataclass
class Prepared:
    county: County
    incidents: list[Incident]
    simulation: CountySimulation
    builder: MessageBuilder
    start: datetime
    end: datetime

    def messages(self) -> Iterator[Outgoing]:
        """Every message of the run, in time order."""
        return message_stream(self.simulation, self.builder, self.end)


def prepare(plan: RunPlan) -> Prepared:
    """Build the county and its incidents; write the register and the planned incidents."""
    county = build_county(plan.seed, plan.villages, plan.households_per_village)
    start = plan.resolved_start()
    if plan.no_incidents:
        incidents: list[Incident] = []
    elif plan.scenario is not None:
        incidents = load_scenario(plan.scenario, start)
    else:
        incidents = default_scenario(county, start, plan.days, plan.seed)
    simulation = CountySimulation(county, incidents, start, plan.seed)
    builder = MessageBuilder(county, plan.seed, intervals=plan.intervals,
                             batch_size=1 if plan.single_reading else 60,
                             missing_rate=plan.missing_rate)
    county.write(plan.output_dir / "register.json")
    # Rewritten with the measured effects when the run ends.
    write_incidents(plan.output_dir / "incidents.json", incidents)
    return Prepared(county, incidents, simulation, builder, start,
                    start + timedelta(days=plan.days))


def run(plan: RunPlan, client: mqtt.Client,
        progress: Callable[[Progress], None] | None = None) -> Progress:
    """Publish the whole run through ``client`` (connected) and write the ground truth."""
    prepared = prepare(plan)
    publisher = Publisher(client, speed=plan.speed, max_in_flight=plan.max_in_flight,
                          progress=progress, incidents=prepared.incidents)
    publisher.announce(prepared.county)
    result = publisher.publish(prepared.messages())
    write_incidents(plan.output_dir / "incidents.json", prepared.incidents)
    summary = {
        "seed": plan.seed, "start": prepared.start.isoformat(), "end": prepared.end.isoformat(),
        "villages": len(prepared.county.villages),
        "meters": len(prepared.county.households), "messages": result.messages,
        "readings": result.readings, "readings_total": result.total_readings,
        "events": result.events, "gateways": result.gateways,
        "acknowledged": result.acknowledged,
        "tank_dry_at": {k: v.isoformat()
                        for k, v in prepared.simulation.tank_dry_at.items()},
    }
    (plan.output_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return result
