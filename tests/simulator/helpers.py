"""Small builders shared by the simulator tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simulator.county import County, build_county
from simulator.engine import CountySimulation, DeviceStates
from simulator.incidents import Incident
from simulator.messages import Intervals, MessageBuilder, Outgoing, message_stream

START = datetime(2026, 6, 1, tzinfo=UTC)  # 08:00 local (UTC+8)


def simulate(county: County, incidents: list[Incident], days: float, *, seed: int = 1,
             start: datetime = START) -> tuple[CountySimulation, list[DeviceStates]]:
    simulation = CountySimulation(county, incidents, start, seed)
    return simulation, list(simulation.states(start + timedelta(days=days)))


def messages(villages: int, households: int, days: float, *, seed: int = 3,
             incidents: list[Incident] | None = None, batch_size: int = 60,
             missing_rate: float = 0.005, intervals: Intervals | None = None,
             start: datetime = START) -> tuple[County, list[Outgoing]]:
    county = build_county(seed, villages, households)
    simulation = CountySimulation(county, incidents or [], start, seed)
    builder = MessageBuilder(county, seed, batch_size=batch_size, missing_rate=missing_rate,
                             intervals=intervals)
    return county, list(message_stream(simulation, builder, start + timedelta(days=days)))


def local_hour(moment: datetime, county: County) -> float:
    local = moment + timedelta(hours=county.utc_offset_hours)
    return local.hour + local.minute / 60
