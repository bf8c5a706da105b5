"""The county in motion: a 5-minute time step over every household, DMA, tank, well and analyser.

:meth:`CountySimulation.step` advances the physical state (vectorised with numpy) and
returns the device states of that step; :meth:`CountySimulation.run` turns states into wire
messages (``common.contract``) as JSON bytes, per gateway, in time order. The hot path builds
plain dicts; tests prove the bytes validate against the contract models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from common.contract import Channel, topic
from simulator import physics
from simulator.county import BASE_LPCD, County
from simulator.incidents import Incident

STEP = timedelta(minutes=5)
CHLORINE_OUTLET_MGL = 0.7
CHLORINE_TAP_MGL = 0.35
LOW_BALANCE_YUAN = 15.0


@dataclass(frozen=True)
class Intervals:
    """How often each kind of device reports, in 5-minute steps."""

    meter: int = 12
    inflow: int = 3
    pump: int = 1
    quality: int = 2


@dataclass
class Outgoing:
    topic: str
    payload: bytes
    sim_time: datetime
    readings: dict[str, int] = field(default_factory=dict)
    events: int = 0


@dataclass
class _Event:
    village: int
    device: str
    device_kind: str
    code: str
    severity: str
    active: bool
    message: str
    dma: str | None = None


class CountySimulation:
    """Deterministic for a given county, incidents, start time and seed."""

    def __init__(self, county: County, incidents: list[Incident], start: datetime, seed: int,
                 intervals: Intervals | None = None, batch_size: int = 60,
                 missing_rate: float = 0.005) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.county = county
        self.incidents = incidents
        self.now = start
        self.intervals = intervals or Intervals()
        self.batch_size = max(1, batch_size)
        self.missing_rate = missing_rate
        self.rng = np.random.default_rng(seed + 2)
        self.step_count = 0
        self.tank_dry_at: dict[str, datetime] = {}
        self._index(county)
        self._initial_state()
        self.seq = np.zeros(len(county.villages), dtype=np.int64)

    # ------------------------------------------------------------------ set-up

    def _index(self, county: County) -> None:
        self.village_ix = {v.id: i for i, v in enumerate(county.villages)}
        hh = county.households
        self.hh_ix = {h.id: i for i, h in enumerate(hh)}
        self.hh_village = np.array([self.village_ix[h.village] for h in hh])
        self.hh_persons = np.array([h.persons for h in hh], dtype=float)
        self.hh_monitored = np.array([h.monitored for h in hh])
        self.well_ix = {w.id: i for i, w in enumerate(county.wells)}
        self.well_village = np.array([self.village_ix[w.village] for w in county.wells])
        self.branch_dma = {b.id: self.village_ix[d.village]
                           for d in county.dmas for b in d.branches}
        self.analyser_ix = {a.id: i for i, a in enumerate(county.analysers)}
        n_v = len(county.villages)
        self.mean_demand = np.bincount(self.hh_village, self.hh_persons, n_v) * BASE_LPCD / 24e3
        self.background_leak = np.array([d.background_leak_m3h for d in county.dmas])
        self.mean_inflow = self.mean_demand + self.background_leak
        self.households_of = [np.flatnonzero(self.hh_village == v) for v in range(n_v)]
        self.wells_of = [np.flatnonzero(self.well_village == v) for v in range(n_v)]
        self.analysers_of = [[a for a in county.analysers if a.village == v.id]
                             for v in county.villages]

    def _initial_state(self) -> None:
        rng, county = self.rng, self.county
        n_h = len(county.households)
        self.hh_factor = rng.lognormal(0.0, 0.25, n_h)
        self.hh_underreg = rng.uniform(0.01, 0.03, n_h)
        self.hh_true = rng.uniform(50, 800, n_h)
        self.hh_registered = self.hh_true * (1 - self.hh_underreg)
        self.balance = np.array([h.initial_balance_yuan for h in county.households])
        self.valve_open = np.ones(n_h, dtype=bool)
        self.clock_drift_s = rng.normal(0, 40, n_h)
        self.inflow_volume = rng.uniform(1e4, 1e5, len(county.villages))
        self.tank_volume = np.array([t.capacity_m3 * 0.8 for t in county.tanks])
        self.tank_capacity = np.array([t.capacity_m3 for t in county.tanks])
        self.tank_height = np.array([t.height_m for t in county.tanks])
        n_w = len(county.wells)
        self.pump_on = np.zeros(n_w, dtype=bool)
        self.pump_flow = np.zeros(n_w)
        self.run_hours = rng.uniform(1000, 20000, n_w)
        self.hours_today = np.zeros(n_w)
        self.well_level = np.array([w.static_level_m for w in county.wells])
        self.surge_decline = np.zeros(len(county.villages))
        self.village_supply_fraction = np.ones(len(county.villages))

    # ------------------------------------------------------------------ physics

    def _active(self, kind: str) -> list[Incident]:
        return [i for i in self.incidents if i.kind == kind and i.active(self.now)]

    def _household_demand(self) -> np.ndarray:
        """m3/h per household this step, before supply limits."""
        moment = self.now
        shape = (physics.diurnal_factor(moment) * physics.weekly_factor(moment)
                 * physics.seasonal_factor(moment))
        per_capita = BASE_LPCD / 24e3 * shape
        demand = self.hh_persons * per_capita * self.hh_factor
        demand *= self.rng.lognormal(-0.045, 0.3, demand.size)
        for surge in self._active("demand_surge"):
            members = self.households_of[self.village_ix[surge.target]]
            demand[members] *= surge.magnitude
        demand[~self.valve_open] = 0.0
        for leak in self._active("customer_leak"):
            index = self.hh_ix[leak.target]
            demand[index] += leak.magnitude
            leak.effect.setdefault("m3h", leak.magnitude)
        return demand

    def _network_leakage(self) -> np.ndarray:
        """m3/h per DMA lost from the pipes: background plus scripted leaks and bursts."""
        leakage = self.background_leak * physics.night_pressure_factor(self.now)
        for leak in self._active("background_leak") + self._active("burst"):
            dma = self.branch_dma[leak.target]
            rate = leak.magnitude * self.mean_inflow[dma] if leak.relative else leak.magnitude
            leakage[dma] += rate
            leak.effect.setdefault("leak_m3h", round(float(rate), 4))
            leak.effect.setdefault("dma", self.county.dmas[dma].id)
        return leakage

    def _pumps(self, hours: float) -> np.ndarray:
        """Run the well pumps by tank level; return the flow each delivers, m3/h."""
        if self.now.hour == 0 and self.now.minute == 0:
            self.hours_today[:] = 0
        for surge in self._active("demand_surge"):
            self.surge_decline[self.village_ix[surge.target]] += (
                surge.aquifer_decline_m_per_day * hours / 24)
        faulty = {self.well_ix[i.target] for i in self._active("pump_fault")}
        weight = physics.summer_weight(self.now)
        fill = self.tank_volume / self.tank_capacity
        for w, well in enumerate(self.county.wells):
            v = self.well_village[w]
            rest = well.static_level_m + well.summer_decline_m * weight + self.surge_decline[v]
            if fill[v] < 0.35:
                self.pump_on[w] = True
            elif fill[v] > 0.95:
                self.pump_on[w] = False
            allowed = self.hours_today[w] < well.allowed_hours_per_day
            # The pump can lower the water only to 2 m above its intake.
            max_flow = max(0.0, (well.intake_depth_m - 2.0 - rest) / well.drawdown_m_per_m3h)
            flow = min(well.rated_flow_m3h, max_flow)
            running = self.pump_on[w] and allowed and w not in faulty and flow > 0.05
            self.pump_flow[w] = flow if running else 0.0
            self.well_level[w] = rest + well.drawdown_m_per_m3h * self.pump_flow[w]
            if running:
                self.hours_today[w] += hours
                self.run_hours[w] += hours
        return np.bincount(self.well_village, self.pump_flow, len(self.county.villages))

    def step(self) -> list[_Event]:
        """Advance one 5-minute step; return the device events it raised."""
        hours = STEP.total_seconds() / 3600
        events = self._balance_incidents()
        demand = self._household_demand()
        leakage = self._network_leakage()
        supply = self._pumps(hours)
        n_v = len(self.county.villages)
        wanted = np.bincount(self.hh_village, demand, n_v) + leakage
        available = self.tank_volume / hours + supply
        fraction = np.clip(available / np.maximum(wanted, 1e-9), 0.0, 1.0)
        self.village_supply_fraction = fraction
        delivered = demand * fraction[self.hh_village]
        self.inflow_rate = wanted * fraction
        self.tank_volume = np.clip(self.tank_volume + (supply - self.inflow_rate) * hours,
                                   0.0, self.tank_capacity)
        self.inflow_volume += self.inflow_rate * hours
        volume = delivered * hours
        self.hh_true += volume
        registered = volume * (1 - self.hh_underreg)
        self.hh_registered += registered
        self.balance -= registered * self.county.tariff_yuan_m3
        events += self._valves()
        self._record_dry_tanks()
        self.now += STEP
        self.step_count += 1
        return events

    def _balance_incidents(self) -> list[_Event]:
        for incident in self._active("zero_balance"):
            self.balance[self.hh_ix[incident.target]] = min(
                self.balance[self.hh_ix[incident.target]], 0.0)
        return []

    def _valves(self) -> list[_Event]:
        """Prepaid logic: the valve shuts at zero balance and opens after a top-up."""
        events = []
        held = {self.hh_ix[i.target] for i in self._active("zero_balance")}
        if self.now.minute == 0:
            low = np.flatnonzero(self.balance < LOW_BALANCE_YUAN)
            topping = low[self.rng.random(low.size) < 0.03]
            for h in topping:
                if h not in held:
                    self.balance[h] += 100.0
        closing = np.flatnonzero(self.valve_open & (self.balance <= 0))
        opening = np.flatnonzero(~self.valve_open & (self.balance > 0))
        for h, is_open in [(h, False) for h in closing] + [(h, True) for h in opening]:
            self.valve_open[h] = is_open
            household = self.county.households[h]
            code = "valve_opened" if is_open else "valve_closed"
            severity = "info" if is_open else ("critical" if household.monitored else "warning")
            events.append(_Event(int(self.hh_village[h]), household.meter, "meter", code,
                                 severity, not is_open, f"prepaid valve {code[6:]}",
                                 household.dma))
            for incident in self.incidents:
                if incident.kind == "zero_balance" and incident.target == household.id \
                        and not is_open:
                    incident.effect.setdefault("valve_closed_at", self.now.isoformat())
        return events

    def _record_dry_tanks(self) -> None:
        for v in np.flatnonzero(self.tank_volume <= 0.01 * self.tank_capacity):
            tank = self.county.tanks[v].id
            if tank not in self.tank_dry_at:
                self.tank_dry_at[tank] = self.now
                for surge in self.incidents:
                    if surge.kind == "demand_surge" and surge.target == self.county.villages[v].id:
                        surge.effect.setdefault("tank_dry_at", self.now.isoformat())

    # ------------------------------------------------------------------ messages

    def run(self, until: datetime) -> Iterator[Outgoing]:
        """Step to ``until``, yielding every message in time order."""
        while self.now < until:
            moment = self.now
            events = self.step()
            yield from self._messages(moment, events)

    def _messages(self, moment: datetime, events: list[_Event]) -> Iterator[Outgoing]:
        stamp = moment.isoformat()
        step = self.step_count - 1
        by_village: list[list[dict]] = [[] for _ in self.county.villages]
        if step % self.intervals.pump == 0:
            self._pump_readings(stamp, moment, by_village)
        if step % self.intervals.inflow == 0:
            self._inflow_readings(stamp, by_village)
        if step % self.intervals.quality == 0:
            self._quality_readings(stamp, moment, by_village)
        meters: list[list[dict]] = [[] for _ in self.county.villages]
        if step % self.intervals.meter == 0:
            self._meter_readings(stamp, moment, meters)
        for v, village in enumerate(self.county.villages):
            gateway = f"gw-{village.id}"
            yield from self._batched(gateway, v, moment, by_village[v])
            yield from self._batched(gateway, v, moment, meters[v])
        yield from self._event_messages(moment, events)

    def _batched(self, gateway: str, v: int, moment: datetime,
                 readings: list[dict]) -> Iterator[Outgoing]:
        name = topic(gateway, Channel.TELEMETRY)
        for start in range(0, len(readings), self.batch_size):
            chunk = readings[start:start + self.batch_size]
            counts: dict[str, int] = {}
            for reading in chunk:
                counts[reading["kind"]] = counts.get(reading["kind"], 0) + 1
            payload = {"schema_version": 1, "gateway": gateway, "seq": int(self.seq[v]),
                       "sent_at": (moment + timedelta(seconds=20)).isoformat(),
                       "readings": chunk}
            self.seq[v] += 1
            yield Outgoing(name, json.dumps(payload, separators=(",", ":")).encode(), moment,
                           readings=counts)

    def _missing(self) -> bool:
        return bool(self.rng.random() < self.missing_rate)

    def _pump_readings(self, stamp: str, moment: datetime, out: list[list[dict]]) -> None:
        faulty = {self.well_ix[i.target] for i in self._active("pump_fault")}
        for w, well in enumerate(self.county.wells):
            if self._missing():
                continue
            v = int(self.well_village[w])
            flow = float(self.pump_flow[w])
            running = flow > 0
            load = flow / well.rated_flow_m3h if well.rated_flow_m3h else 0.0
            noise = self.rng.normal(0, 1, 3)
            out[v].append({
                "kind": "pump", "device": well.id, "time": stamp,
                "village": well.village, "dma": f"dma-{well.village}",
                "running": running,
                "frequency_hz": round(40 + 10 * load + 0.05 * noise[0], 2) if running else 0.0,
                "current_a": round(max(0.0, 4 + 0.9 * flow + 0.1 * noise[1]), 1)
                if running else 0.0,
                "flow_m3h": round(max(0.0, flow * (1 + 0.01 * noise[2])), 2),
                "outlet_pressure_mpa": round(0.32 + 0.02 * load, 3) if running else 0.0,
                "well_level_m": round(float(self.well_level[w]), 2),
                "run_hours": round(float(self.run_hours[w]), 2),
                "fault_code": 3 if w in faulty else 0,
            })
            tank = self.county.tanks[v]
            if w == self.wells_of[v][0]:
                level = self.tank_volume[v] / self.tank_capacity[v] * self.tank_height[v]
                out[v].append({"kind": "tank", "device": tank.id, "time": stamp,
                               "village": tank.village, "level_m": round(float(level), 3),
                               "volume_m3": round(float(self.tank_volume[v]), 2)})

    def _inflow_readings(self, stamp: str, out: list[list[dict]]) -> None:
        for v, dma in enumerate(self.county.dmas):
            if self._missing():
                continue
            out[v].append({"kind": "dma_inflow", "device": dma.inflow_meter, "time": stamp,
                           "village": dma.village, "dma": dma.id,
                           "flow_m3h": round(float(self.inflow_rate[v]), 3),
                           "volume_m3": round(float(self.inflow_volume[v]), 3)})

    def _quality_readings(self, stamp: str, moment: datetime, out: list[list[dict]]) -> None:
        failing = {i.target: i for i in self._active("chlorinator_failure")}
        turbid = {i.target: i for i in self._active("turbidity_event")}
        for analyser in self.county.analysers:
            v = self.village_ix[analyser.village]
            base = CHLORINE_OUTLET_MGL if analyser.site == "outlet" else CHLORINE_TAP_MGL
            chlorine = base * (1 + 0.06 * self.rng.normal())
            if analyser.id in failing:
                incident = failing[analyser.id]
                hours = (moment - incident.start).total_seconds() / 3600
                chlorine = 0.02 + (chlorine - 0.02) * math.exp(-hours / 1.5)
                if chlorine < 0.3:
                    incident.effect.setdefault("below_limit_at", stamp)
            turbidity = 0.3 + 0.05 * self.rng.normal()
            if analyser.id in turbid:
                incident = turbid[analyser.id]
                span = ((incident.end or moment) - incident.start).total_seconds()
                done = (moment - incident.start).total_seconds() / max(span, 1)
                turbidity += incident.magnitude * max(0.0, 1 - abs(2 * done - 1))
            values = {
                "turbidity_ntu": round(max(0.01, turbidity), 3),
                "free_chlorine_mgl": round(max(0.0, chlorine), 3),
                "ph": round(7.4 + 0.05 * self.rng.normal(), 2),
                "conductivity_uscm": round(480 + 10 * self.rng.normal(), 1),
                "temperature_c": round(8 + 8 * physics.summer_weight(moment)
                                       + 0.2 * self.rng.normal(), 2),
            }
            reading = {"kind": "quality", "device": analyser.id, "time": stamp,
                       "village": analyser.village, "dma": f"dma-{analyser.village}"}
            reading |= {name: values[name] for name in analyser.parameters}
            out[v].append(reading)

    def _meter_readings(self, stamp: str, moment: datetime, out: list[list[dict]]) -> None:
        offline = {self.hh_ix[i.target] for i in self._active("meter_offline")}
        battery = {self.hh_ix[i.target] for i in self._active("low_battery")}
        tamper = {self.hh_ix[i.target] for i in self._active("tamper")}
        missing = self.rng.random(len(self.county.households)) < self.missing_rate
        for h, household in enumerate(self.county.households):
            if h in offline or missing[h]:
                continue
            battery_low, tampered = h in battery, h in tamper
            valve = "open" if self.valve_open[h] else "closed"
            status = (0 if valve == "open" else 1) | (4 if battery_low else 0) \
                | ((1 if tampered else 0) << 8)
            clock = moment + timedelta(seconds=float(self.clock_drift_s[h]))
            out[int(self.hh_village[h])].append({
                "kind": "meter", "device": household.meter, "time": stamp,
                "village": household.village, "dma": household.dma,
                "volume_m3": round(float(self.hh_registered[h]), 2),
                "balance_yuan": round(float(self.balance[h]), 2), "valve": valve,
                "battery_low": battery_low, "tamper": tampered, "status": status,
                "meter_clock": clock.replace(microsecond=0).isoformat(),
            })

    def _event_messages(self, moment: datetime, events: list[_Event]) -> Iterator[Outgoing]:
        events = events + self._incident_start_events(moment)
        villages = sorted({e.village for e in events})
        for v in villages:
            village = self.county.villages[v]
            gateway = f"gw-{village.id}"
            items = [{"device": e.device, "device_kind": e.device_kind,
                      "time": moment.isoformat(), "village": village.id, "dma": e.dma,
                      "code": e.code, "severity": e.severity, "active": e.active,
                      "message": e.message}
                     for e in events if e.village == v]
            payload = {"schema_version": 1, "gateway": gateway, "seq": int(self.seq[v]),
                       "sent_at": (moment + timedelta(seconds=20)).isoformat(),
                       "events": items}
            self.seq[v] += 1
            yield Outgoing(topic(gateway, Channel.EVENTS),
                           json.dumps(payload, separators=(",", ":")).encode(), moment,
                           events=len(items))

    def _incident_start_events(self, moment: datetime) -> list[_Event]:
        """Device alarms a real gateway would raise when a device fault starts or clears."""
        found = []
        codes = {"low_battery": ("low_battery", "warning"), "tamper": ("tamper", "critical"),
                 "pump_fault": ("pump_fault", "critical")}
        for incident in self.incidents:
            if incident.kind not in codes:
                continue
            starts = incident.start <= moment < incident.start + STEP
            ends = incident.end is not None and incident.end <= moment < incident.end + STEP
            if not (starts or ends):
                continue
            code, severity = codes[incident.kind]
            if incident.kind == "pump_fault":
                well = self.county.wells[self.well_ix[incident.target]]
                found.append(_Event(self.village_ix[well.village], well.id, "pump", code,
                                    severity, starts, "drive fault", f"dma-{well.village}"))
            else:
                household = self.county.households[self.hh_ix[incident.target]]
                found.append(_Event(self.village_ix[household.village], household.meter,
                                    "meter", code, severity, starts, code.replace("_", " "),
                                    household.dma))
        return found
