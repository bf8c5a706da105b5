"""Simulated readings in the analysis long format, straight from the simulator's messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from common.register import County
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident
from simulator.messages import MessageBuilder, message_stream

START = datetime(2026, 6, 1, tzinfo=UTC)  # 08:00 local
_VALVE = {"open": 0.0, "closed": 1.0, "fault": 2.0}
_SKIP = {"kind", "device", "time", "village", "dma", "meter_clock"}


@dataclass
class Simulated:
    county: County
    incidents: list[Incident]
    readings: pd.DataFrame
    end: datetime


def long_rows(payload: bytes) -> list[tuple[str, str, str, str, float]]:
    """The long-format rows of one telemetry message (events are not readings)."""
    message = json.loads(payload)
    rows = []
    for reading in message.get("readings", []):
        for name, value in reading.items():
            if name in _SKIP or value is None:
                continue
            number = _VALVE[value] if name == "valve" else float(value)
            rows.append((reading["time"], reading["device"], reading["kind"], name, number))
    return rows


def simulate(villages: int, households: int, days: float, *, seed: int = 7,
             incidents: list[Incident] | None = None, start: datetime = START,
             missing_rate: float = 0.005) -> Simulated:
    county = build_county(seed, villages, households)
    simulation = CountySimulation(county, incidents or [], start, seed)
    builder = MessageBuilder(county, seed, missing_rate=missing_rate)
    end = start + timedelta(days=days)
    rows = []
    for message in message_stream(simulation, builder, end):
        if message.topic.endswith("/telemetry"):
            rows.extend(long_rows(message.payload))
    frame = pd.DataFrame(rows, columns=["time", "device", "kind", "field", "value"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return Simulated(county, incidents or [], frame, end)
