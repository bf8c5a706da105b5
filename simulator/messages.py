"""Wire messages from device states: what each village gateway publishes, in time order.

Per gateway: household meter readings hourly (batched up to ``batch_size`` readings per
TelemetryMessage; ``batch_size=1`` sends one reading per message), DMA inflow every 15 min,
pump and tank every 5 min, water quality every 10 min (:class:`Intervals`), device events as
EventMessage; one sequence counter per gateway over telemetry and events. Payloads are JSON
bytes following ``common.contract``. Meter readings, the bulk of a county, are formatted from
precomputed per-meter fragments instead of dicts: a full-county day stays a matter of
seconds (``benchmarks/simulator_generation.py``); the tests prove every kind validates
against the contract models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from common.contract import SCHEMA_VERSION, Channel, topic
from simulator.county import County
from simulator.engine import STEP, CountySimulation, DeviceStates, SimEvent

STEP_MIN = int(STEP.total_seconds() // 60)


@dataclass(frozen=True)
class Intervals:
    """How often each kind of device reports, in minutes (multiples of the 5-minute step)."""

    meter_min: int = 60
    inflow_min: int = 15
    pump_min: int = 5
    tank_min: int = 5
    quality_min: int = 10

    def __post_init__(self) -> None:
        for name in ("meter_min", "inflow_min", "pump_min", "tank_min", "quality_min"):
            value = getattr(self, name)
            if value <= 0 or value % STEP_MIN:
                raise ValueError(f"{name}={value}: must be a positive multiple of {STEP_MIN}")


class _Readings:
    """One gateway's readings of a step as JSON texts, with the run of each kind."""

    __slots__ = ("texts", "runs")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.runs: list[tuple[str, int, int]] = []

    def add(self, kind: str, texts: list[str]) -> None:
        if not texts:
            return
        begin = len(self.texts)
        if self.runs and self.runs[-1][0] == kind:
            begin = self.runs.pop()[1]
        self.texts.extend(texts)
        self.runs.append((kind, begin, len(self.texts)))


@dataclass
class Outgoing:
    """One MQTT message ready to publish."""

    topic: str
    payload: bytes
    sim_time: datetime
    gateway: str = ""
    seq: int = 0
    readings: dict[str, int] = field(default_factory=dict)
    events: int = 0


def _offset_text(hours: float) -> str:
    minutes = round(hours * 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class MessageBuilder:
    """Turns :class:`DeviceStates` into per-gateway messages; deterministic for a seed."""

    def __init__(self, county: County, seed: int, *, intervals: Intervals | None = None,
                 batch_size: int = 60, missing_rate: float = 0.005,
                 send_delay_s: float = 5.0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0.0 <= missing_rate < 1.0:
            raise ValueError("missing_rate must be in [0, 1)")
        self.county = county
        self.intervals = intervals or Intervals()
        self.batch_size = batch_size
        self.missing_rate = missing_rate
        self.send_delay = timedelta(seconds=send_delay_s)
        self.rng = np.random.default_rng(seed + 3)
        self.seq = [0] * len(county.villages)
        village_ix = {v.id: i for i, v in enumerate(county.villages)}
        self._gateways = [v.gateway for v in county.villages]
        self._telemetry = [topic(g, Channel.TELEMETRY) for g in self._gateways]
        self._events = [topic(g, Channel.EVENTS) for g in self._gateways]
        households = county.households
        self._hh_of = self._group([village_ix[h.village] for h in households])
        self._well_village = [village_ix[w.village] for w in county.wells]
        self._analysers_of = self._group([village_ix[a.village] for a in county.analysers])
        self._meter_head = [f'{{"kind":"meter","device":"{h.meter}","time":"'
                            for h in households]
        self._meter_mid = [f'","village":"{h.village}","dma":"{h.dma}","volume_m3":'
                           for h in households]
        self._clock_zone = _offset_text(county.utc_offset_hours)
        self._local_offset = np.timedelta64(round(county.utc_offset_hours * 3600), "s")

    def _group(self, village_of: list[int]) -> list[list[int]]:
        groups: list[list[int]] = [[] for _ in self.county.villages]
        for index, village in enumerate(village_of):
            groups[village].append(index)
        return groups

    def _due(self, moment: datetime, every_min: int) -> bool:
        return int(moment.timestamp()) // 60 % every_min == 0

    def _present(self, count: int) -> np.ndarray:
        """Which of ``count`` devices answered this time (a small deterministic loss)."""
        return self.rng.random(count) >= self.missing_rate

    # ------------------------------------------------------------------ per step

    def build(self, states: DeviceStates) -> list[Outgoing]:
        """Every message the gateways send for one step, gateway by gateway."""
        moment = states.time
        stamp = moment.isoformat()
        per_village = [_Readings() for _ in self.county.villages]
        if self._due(moment, self.intervals.pump_min):
            self._pumps(states, stamp, per_village)
        if self._due(moment, self.intervals.tank_min):
            self._tanks(states, stamp, per_village)
        if self._due(moment, self.intervals.inflow_min):
            self._inflows(states, stamp, per_village)
        if self._due(moment, self.intervals.quality_min) and self.county.analysers:
            self._quality(states, stamp, per_village)
        if self._due(moment, self.intervals.meter_min):
            self._meters(states, stamp, per_village)
        events: list[list[SimEvent]] = [[] for _ in self.county.villages]
        for event in states.events:
            events[event.village].append(event)
        sent_at = (moment + self.send_delay).isoformat()
        out: list[Outgoing] = []
        for v, readings in enumerate(per_village):
            out.extend(self._batches(v, moment, sent_at, readings))
            if events[v]:
                out.append(self._event_message(v, moment, stamp, sent_at, events[v]))
        return out

    def _batches(self, v: int, moment: datetime, sent_at: str,
                 readings: _Readings) -> Iterator[Outgoing]:
        gateway, texts, runs = self._gateways[v], readings.texts, readings.runs
        for first in range(0, len(texts), self.batch_size):
            last = min(first + self.batch_size, len(texts))
            seq = self._next_seq(v)
            payload = (f'{{"schema_version":{SCHEMA_VERSION},"gateway":"{gateway}",'
                       f'"seq":{seq},"sent_at":"{sent_at}","readings":['
                       + ",".join(texts[first:last]) + "]}")
            counts = {kind: min(last, end) - max(first, begin) for kind, begin, end in runs
                      if begin < last and end > first}
            yield Outgoing(self._telemetry[v], payload.encode(), moment, gateway, seq, counts)

    def _next_seq(self, v: int) -> int:
        seq = self.seq[v]
        self.seq[v] = seq + 1
        return seq

    def _event_message(self, v: int, moment: datetime, stamp: str, sent_at: str,
                       events: list[SimEvent]) -> Outgoing:
        village = self.county.villages[v].id
        items = []
        for e in events:
            item: dict[str, Any] = {"device": e.device, "device_kind": e.device_kind,
                                    "time": stamp, "village": village, "code": e.code,
                                    "severity": e.severity, "active": e.active,
                                    "message": e.message}
            if e.dma:
                item["dma"] = e.dma
            items.append(item)
        seq = self._next_seq(v)
        payload = {"schema_version": SCHEMA_VERSION, "gateway": self._gateways[v], "seq": seq,
                   "sent_at": sent_at, "events": items}
        return Outgoing(self._events[v], json.dumps(payload, separators=(",", ":")).encode(),
                        moment, self._gateways[v], seq, events=len(items))

    # ------------------------------------------------------------------ readings

    def _add(self, out: list[_Readings], v: int, reading: dict[str, Any]) -> None:
        out[v].add(reading["kind"], [json.dumps(reading, separators=(",", ":"))])

    def _pumps(self, s: DeviceStates, stamp: str, out: list[_Readings]) -> None:
        present = self._present(len(self.county.wells))
        for w, well in enumerate(self.county.wells):
            if not present[w]:
                continue
            self._add(out, self._well_village[w], {
                "kind": "pump", "device": well.id, "time": stamp, "village": well.village,
                "dma": f"dma-{well.village}", "running": bool(s.pump_running[w]),
                "frequency_hz": round(float(s.pump_frequency_hz[w]), 2),
                "current_a": round(float(s.pump_current_a[w]), 1),
                "flow_m3h": round(float(s.pump_flow_m3h[w]), 2),
                "outlet_pressure_mpa": round(float(s.pump_pressure_mpa[w]), 3),
                "well_level_m": round(float(s.well_level_m[w]), 2),
                "run_hours": round(float(s.pump_run_hours[w]), 2),
                "fault_code": int(s.pump_fault_code[w]),
            })

    def _tanks(self, s: DeviceStates, stamp: str, out: list[_Readings]) -> None:
        present = self._present(len(self.county.tanks))
        for v, tank in enumerate(self.county.tanks):
            if present[v]:
                self._add(out, v, {"kind": "tank", "device": tank.id, "time": stamp,
                                   "village": tank.village,
                                   "level_m": round(float(s.tank_level_m[v]), 3),
                                   "volume_m3": round(float(s.tank_volume_m3[v]), 2)})

    def _inflows(self, s: DeviceStates, stamp: str, out: list[_Readings]) -> None:
        present = self._present(len(self.county.dmas))
        for v, dma in enumerate(self.county.dmas):
            if present[v]:
                self._add(out, v, {"kind": "dma_inflow", "device": dma.inflow_meter,
                                   "time": stamp, "village": dma.village, "dma": dma.id,
                                   "flow_m3h": round(float(s.inflow_m3h[v]), 3),
                                   "volume_m3": round(float(s.inflow_volume_m3[v]), 3)})

    def _quality(self, s: DeviceStates, stamp: str, out: list[_Readings]) -> None:
        present = self._present(len(self.county.analysers))
        values = {
            "turbidity_ntu": (s.turbidity_ntu, 3), "free_chlorine_mgl": (s.free_chlorine_mgl, 3),
            "ph": (s.ph, 2), "conductivity_uscm": (s.conductivity_uscm, 1),
            "temperature_c": (s.temperature_c, 2),
        }
        for v, analysers in enumerate(self._analysers_of):
            for a in analysers:
                if not present[a]:
                    continue
                analyser = self.county.analysers[a]
                reading: dict[str, Any] = {"kind": "quality", "device": analyser.id,
                                           "time": stamp, "village": analyser.village,
                                           "dma": f"dma-{analyser.village}"}
                for name in analyser.parameters:
                    array, digits = values[name]
                    reading[name] = round(float(array[a]), digits)
                self._add(out, v, reading)

    def _meters(self, s: DeviceStates, stamp: str, out: list[_Readings]) -> None:
        """The hot path: ~60,000 readings an hour for a full county, formatted directly."""
        answering = self._present(len(self.county.households)) & ~s.meter_offline
        volume = s.meter_volume_m3.tolist()
        balance = s.balance_yuan.tolist()
        status = ((~s.valve_open).astype(np.int64) | (s.battery_low.astype(np.int64) << 2)
                  | (s.tamper.astype(np.int64) << 8)).tolist()
        valve = np.where(s.valve_open, "open", "closed").tolist()
        battery = np.where(s.battery_low, "true", "false").tolist()
        tamper = np.where(s.tamper, "true", "false").tolist()
        local = np.datetime64(s.time.astimezone(UTC).replace(tzinfo=None), "s") \
            + self._local_offset
        clock = np.datetime_as_string(local + s.meter_clock_offset_s.astype("timedelta64[s]"),
                                      unit="s").tolist()
        zone, head, mid = self._clock_zone, self._meter_head, self._meter_mid
        for v, households in enumerate(self._hh_of):
            out[v].add("meter", [
                f'{head[h]}{stamp}{mid[h]}{volume[h]:.2f},"balance_yuan":{balance[h]:.2f},'
                f'"valve":"{valve[h]}","battery_low":{battery[h]},"tamper":{tamper[h]},'
                f'"status":{status[h]},"meter_clock":"{clock[h]}{zone}"}}'
                for h in households if answering[h]])


def message_stream(simulation: CountySimulation, builder: MessageBuilder,
                   until: datetime) -> Iterator[Outgoing]:
    """Step the simulation to ``until`` and yield every message in time order."""
    for states in simulation.states(until):
        yield from builder.build(states)
