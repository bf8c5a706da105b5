"""The county in motion: a 5-minute time step over every household, DMA, tank, well and analyser.

:meth:`CountySimulation.step` advances the physical state (vectorised with numpy) from ``t``
to ``t + 5 min`` and returns :class:`DeviceStates`: what every device would report at the
end of the step (register values a CJ/T 188 meter or a Modbus drive would answer with) and
the device events the step raised. Turning states into wire messages is
``simulator.messages``; the gateway's device simulators can serve the same states.

Every array is indexed like the register: households in ``county.households`` order, wells
in ``county.wells`` order, tanks and DMAs by village, analysers in ``county.analysers`` order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from simulator import physics
from simulator.county import BASE_LPCD, County
from simulator.incidents import Incident, check_targets

STEP = timedelta(minutes=5)
STEP_H = STEP.total_seconds() / 3600
LOW_BALANCE_YUAN = 15.0
TOP_UP_PROBABILITY_PER_HOUR = 0.05  # a household below the low balance pays within ~a day
TOP_UP_YUAN = (50.0, 200.0)
OUTLET_CHLORINE_MGL = (0.6, 0.9)  # dosing set point range, GB 5749 outlet band 0.3-2
TAP_CHLORINE_RATIO = (0.35, 0.6)  # chlorine left at the tap after the network's decay
CHLORINE_FLOOR_MGL = 0.02
OUTLET_LIMIT_MGL = 0.3
TAP_LIMIT_MGL = 0.05
PUMP_START_FILL = (0.5, 0.35)  # lead / lag well starts below this tank fill
PUMP_STOP_FILL = (0.95, 0.9)
PUMP_EFFICIENCY = 0.55
MOTOR_VOLTAGE_V = 380.0
MOTOR_POWER_FACTOR = 0.85
PUMP_FAULT_CODE = 0x0003  # drive: overcurrent / motor fault
AQUIFER_RECOVERY_M_PER_DAY = 1.0
WELL_RESPONSE_TAU_H = 0.5


@dataclass
class SimEvent:
    """A device event a gateway would raise; ``village`` indexes ``county.villages``."""

    village: int
    device: str
    device_kind: str
    code: str
    severity: str
    active: bool
    message: str
    dma: str | None = None


@dataclass
class DeviceStates:
    """Every device's reading at ``time`` (the end of a step); arrays are copies."""

    time: datetime
    # households / meters
    meter_volume_m3: np.ndarray  # cumulative, as registered (under-registers 1-3%)
    balance_yuan: np.ndarray
    valve_open: np.ndarray  # bool
    battery_low: np.ndarray  # bool
    tamper: np.ndarray  # bool
    meter_offline: np.ndarray  # bool: does not answer the gateway
    meter_clock_offset_s: np.ndarray  # int seconds the meter clock runs ahead
    # wells / pump drives
    pump_running: np.ndarray  # bool
    pump_frequency_hz: np.ndarray
    pump_current_a: np.ndarray
    pump_flow_m3h: np.ndarray
    pump_pressure_mpa: np.ndarray
    well_level_m: np.ndarray  # depth to water, m below ground
    pump_run_hours: np.ndarray
    pump_fault_code: np.ndarray  # int
    # tanks and DMAs, by village
    tank_level_m: np.ndarray
    tank_volume_m3: np.ndarray
    inflow_m3h: np.ndarray  # mean over the step
    inflow_volume_m3: np.ndarray  # cumulative bulk meter
    # analysers
    turbidity_ntu: np.ndarray
    free_chlorine_mgl: np.ndarray
    ph: np.ndarray
    conductivity_uscm: np.ndarray
    temperature_c: np.ndarray
    events: list[SimEvent] = field(default_factory=list)


@dataclass
class _Resolved:
    """An incident with its target resolved to array indices once."""

    incident: Incident
    index: int  # household, well, DMA (village) or analyser index
    villages: list[int]
    analysers: list[int]
    active: bool = False


class CountySimulation:
    """Deterministic for a given county, incidents, start time and seed.

    The incidents' ``effect`` is cleared here and filled in as the simulation runs, so it
    always describes this run (the ground truth written to ``incidents.json``).
    """

    def __init__(self, county: County, incidents: list[Incident], start: datetime,
                 seed: int) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        check_targets(county, incidents)
        for incident in incidents:
            incident.effect.clear()
        self.county = county
        self.incidents = incidents
        self.start = start
        self.now = start
        self.rng = np.random.default_rng(seed + 2)
        self.step_count = 0
        self.tank_dry_at: dict[str, datetime] = {}
        self._local_offset = timedelta(hours=county.utc_offset_hours)
        self._index(county)
        self._initial_state()
        self._resolved = [self._resolve(i) for i in incidents]

    # ------------------------------------------------------------------ set-up

    def _index(self, county: County) -> None:
        self.village_ix = {v.id: i for i, v in enumerate(county.villages)}
        n_v = len(county.villages)
        hh = county.households
        self.hh_ix = {h.id: i for i, h in enumerate(hh)}
        self.meter_ix = {h.meter: i for i, h in enumerate(hh)}
        self.hh_village = np.array([self.village_ix[h.village] for h in hh])
        self.hh_persons = np.array([h.persons for h in hh], dtype=float)
        self.hh_tariff = np.array([h.tariff_yuan_m3 for h in hh])
        self.well_ix = {w.id: i for i, w in enumerate(county.wells)}
        wells = county.wells
        self.well_village = np.array([self.village_ix[w.village] for w in wells], dtype=int)
        self.well_rated = np.array([w.rated_flow_m3h for w in wells])
        self.well_allowed_h = np.array([w.allowed_hours_per_day for w in wells])
        self.well_static = np.array([w.static_level_m for w in wells])
        self.well_intake = np.array([w.intake_depth_m for w in wells])
        self.well_drawdown = np.array([w.drawdown_m_per_m3h for w in wells])
        self.well_decline = np.array([w.summer_decline_m for w in wells])
        self.well_delivery = np.array([w.delivery_head_m for w in wells])
        # 0 for a village's first (lead) well, 1 for the second (lag)
        self.well_rank = np.array([int(w.id.rsplit("-", 1)[1]) > 1 for w in wells], dtype=int)
        self.branch_village = {b.id: self.village_ix[d.village]
                               for d in county.dmas for b in d.branches}
        self.analyser_ix = {a.id: i for i, a in enumerate(county.analysers)}
        self.an_village = np.array([self.village_ix[a.village] for a in county.analysers],
                                   dtype=int)
        self.an_outlet = np.array([a.site == "outlet" for a in county.analysers], dtype=bool)
        self.mean_demand = (np.bincount(self.hh_village, self.hh_persons, n_v)
                            * BASE_LPCD / 24e3)
        self.background_leak = np.array([d.background_leak_m3h for d in county.dmas])
        self.mean_inflow = self.mean_demand + self.background_leak
        self.tank_capacity = np.array([t.capacity_m3 for t in county.tanks])
        self.tank_height = np.array([t.height_m for t in county.tanks])

    def _initial_state(self) -> None:
        rng, county = self.rng, self.county
        n_h, n_w, n_v = len(county.households), len(county.wells), len(county.villages)
        n_a = len(county.analysers)
        # Households differ: about 40-80 L/person/day around BASE_LPCD.
        self.hh_factor = rng.lognormal(0.0, 0.2, n_h)
        self.hh_underreg = rng.uniform(0.01, 0.03, n_h)
        self.hh_true = rng.uniform(50, 800, n_h)
        self.hh_registered = self.hh_true * (1 - self.hh_underreg)
        self.balance = np.array([h.initial_balance_yuan for h in county.households])
        self.valve_open = np.ones(n_h, dtype=bool)
        self.battery_low = np.zeros(n_h, dtype=bool)
        self.battery_low_h = np.zeros(n_h)
        self.tamper = np.zeros(n_h, dtype=bool)
        self.offline = np.zeros(n_h, dtype=bool)
        self.hold_zero = np.zeros(n_h, dtype=bool)
        self.remote_closed = np.zeros(n_h, dtype=bool)
        self.clock_offset_s = rng.normal(0, 40, n_h)
        self.clock_drift_s_per_day = rng.normal(0, 0.5, n_h)
        self.inflow_volume = rng.uniform(1e4, 1e5, n_v)
        self.inflow_rate = np.zeros(n_v)
        self.tank_volume = self.tank_capacity * 0.8
        self.supply_fraction = np.ones(n_v)
        self.pump_on = np.zeros(n_w, dtype=bool)
        self.pump_flow = np.zeros(n_w)
        self.pump_fault = np.zeros(n_w, dtype=bool)
        self.run_hours = rng.uniform(1000, 20000, n_w)
        self.hours_today = np.zeros(n_w)
        self.well_level = self.well_static.copy()
        self.surge_decline = np.zeros(n_v)
        self.demand_factor = np.ones(n_v)
        self.chlorine_setpoint = rng.uniform(*OUTLET_CHLORINE_MGL, n_v)
        self.tap_ratio = rng.uniform(*TAP_CHLORINE_RATIO, n_v)
        self.outlet_chlorine = self.chlorine_setpoint.copy()
        self.chlorinator_ok = np.ones(n_v, dtype=bool)
        self.an_chlorine = np.where(self.an_outlet, self.chlorine_setpoint[self.an_village],
                                    (self.chlorine_setpoint * self.tap_ratio)[self.an_village])
        self.an_turbidity_base = rng.uniform(0.2, 0.4, n_a)
        self.an_ph_base = rng.uniform(7.2, 7.8, n_a)
        self.an_conductivity_base = rng.uniform(350, 800, n_a)

    def _resolve(self, incident: Incident) -> _Resolved:
        target = incident.target
        if target in self.branch_village:
            village = self.branch_village[target]
            return _Resolved(incident, village, [village], [])
        if target in self.hh_ix:
            index = self.hh_ix[target]
            return _Resolved(incident, index, [int(self.hh_village[index])], [])
        if target in self.well_ix:
            index = self.well_ix[target]
            return _Resolved(incident, index, [int(self.well_village[index])], [])
        if target in self.analyser_ix:
            index = self.analyser_ix[target]
            village = int(self.an_village[index])
            # A chlorinator serves the whole scheme, whichever analyser was named.
            if incident.kind == "chlorinator_failure":
                return _Resolved(incident, village, [village],
                                 list(np.flatnonzero(self.an_village == village)))
            return _Resolved(incident, village, [village], [index])
        village = self.village_ix[target]
        return _Resolved(incident, village, [village],
                         list(np.flatnonzero(self.an_village == village)))

    def command_valve(self, meter: str, open_valve: bool) -> None:
        """A bureau valve command (CJ/T 188 A017) reaching a meter, effective at the next step.

        Close holds the valve closed until an open command; open hands the valve back to
        the prepaid logic (a zero balance keeps it closed)."""
        self.remote_closed[self.meter_ix[meter]] = not open_valve

    # ------------------------------------------------------------------ stepping

    def local(self, moment: datetime) -> datetime:
        """The county's local wall-clock time (naive) for a UTC-aware moment."""
        return moment.astimezone(UTC).replace(tzinfo=None) + self._local_offset

    def states(self, until: datetime) -> Iterator[DeviceStates]:
        """Step to ``until``, yielding the device states after every step."""
        while self.now < until:
            yield self.step()

    def step(self) -> DeviceStates:
        """Advance one 5-minute step; return every device's state at its end."""
        middle = self.local(self.now + STEP / 2)
        events: list[SimEvent] = []
        # Incidents as of the end of the step: a reading taken at T sees what is active at T.
        self._update_incidents(events, self.now + STEP)
        demand = self._household_demand(middle)
        leakage = self._network_leakage(middle)
        supply = self._pumps(middle)
        n_v = len(self.county.villages)
        wanted = np.bincount(self.hh_village, demand, n_v) + leakage
        available = self.tank_volume / STEP_H + supply
        fraction = np.clip(available / np.maximum(wanted, 1e-9), 0.0, 1.0)
        self.supply_fraction = fraction
        self.inflow_rate = wanted * fraction
        self.tank_volume = np.clip(self.tank_volume + (supply - self.inflow_rate) * STEP_H,
                                   0.0, self.tank_capacity)
        self.inflow_volume += self.inflow_rate * STEP_H
        self._meters(demand * fraction[self.hh_village] * STEP_H)
        self._measure_incidents(leakage, wanted)
        self.now += STEP
        self.step_count += 1
        self._prepaid(events)
        self._quality(middle)
        self._record_dry_tanks()
        return self._snapshot(events)

    # ------------------------------------------------------------------ incidents

    def _update_incidents(self, events: list[SimEvent], moment: datetime) -> None:
        """Apply incidents that start or end at this step; raise the events a gateway would."""
        for item in self._resolved:
            now_active = item.incident.active(moment)
            if now_active == item.active:
                continue
            item.active = now_active
            self._switch(item, now_active, events, moment.isoformat())
        self.demand_factor[:] = 1.0
        for item in self._resolved:
            if item.active and item.incident.kind == "demand_surge":
                self.demand_factor[item.index] *= item.incident.magnitude

    def _switch(self, item: _Resolved, on: bool, events: list[SimEvent], stamp: str) -> None:
        kind, index = item.incident.kind, item.index
        item.incident.effect.setdefault("started_at", stamp)
        if not on:
            item.incident.effect["ended_at"] = stamp
        if kind == "meter_offline":
            self.offline[index] = on
        elif kind == "low_battery":
            self.battery_low[index] = on
            self.battery_low_h[index] = 0.0
            events.append(self._meter_event(index, "low_battery", "warning", on))
        elif kind == "tamper":
            self.tamper[index] = on
            events.append(self._meter_event(index, "tamper", "critical", on))
        elif kind == "zero_balance":
            self.hold_zero[index] = on
            if on:
                self.balance[index] = min(self.balance[index], 0.0)
            else:  # the household (or the bureau, for a monitored one) pays
                self.balance[index] = max(self.balance[index], 0.0) + 100.0
        elif kind == "pump_fault":
            self.pump_fault[index] = on
            well = self.county.wells[index]
            events.append(SimEvent(item.villages[0], well.id, "pump", "pump_fault",
                                   "critical", on, f"drive fault code {PUMP_FAULT_CODE}"
                                   if on else "drive fault cleared", f"dma-{well.village}"))
            item.incident.effect["fault_code"] = float(PUMP_FAULT_CODE)
        elif kind == "chlorinator_failure":
            self.chlorinator_ok[index] = not on

    def _meter_event(self, h: int, code: str, severity: str, active: bool) -> SimEvent:
        household = self.county.households[h]
        text = code.replace("_", " ") + ("" if active else " cleared")
        return SimEvent(int(self.hh_village[h]), household.meter, "meter", code, severity,
                        active, text, household.dma)

    def _measure_incidents(self, leakage: np.ndarray, wanted: np.ndarray) -> None:
        """Accumulate the ground-truth size of what is going on."""
        for item in self._resolved:
            if not item.active:
                continue
            incident, effect = item.incident, item.incident.effect
            if incident.kind == "demand_surge":
                v = item.index
                short = (wanted[v] - self.inflow_rate[v]) * STEP_H
                effect["unserved_m3"] = round(float(effect.get("unserved_m3", 0.0))
                                              + float(short), 3)
                deepest = float(self.well_level[self.well_village == v].max())
                effect["deepest_well_level_m"] = round(
                    max(float(effect.get("deepest_well_level_m", 0.0)), deepest), 2)
            elif incident.kind == "customer_leak":
                effect["registered_m3"] = round(float(effect.get("registered_m3", 0.0))
                                                + float(self._customer_leak_registered(item)), 4)

    def _customer_leak_registered(self, item: _Resolved) -> float:
        h = item.index
        if not self.valve_open[h]:
            return 0.0
        return item.incident.magnitude * STEP_H * (1 - self.hh_underreg[h])

    # ------------------------------------------------------------------ demand and supply

    def _household_demand(self, local: datetime) -> np.ndarray:
        """m3/h per household this step, before supply limits (0 behind a closed valve)."""
        shape = (physics.diurnal_factor(local) * physics.weekly_factor(local)
                 * physics.seasonal_factor(local))
        demand = self.hh_persons * (BASE_LPCD / 24e3 * shape) * self.hh_factor
        # Mean-one noise: lognormal(mu=-sigma^2/2).
        demand *= self.rng.lognormal(-0.045, 0.3, demand.size)
        demand *= self.demand_factor[self.hh_village]
        for item in self._resolved:
            if item.active and item.incident.kind == "customer_leak":
                demand[item.index] += item.incident.magnitude
                item.incident.effect.setdefault("leak_m3h", item.incident.magnitude)
                item.incident.effect.setdefault("meter", self.county.households[item.index].meter)
        demand[~self.valve_open] = 0.0
        return demand

    def _network_leakage(self, local: datetime) -> np.ndarray:
        """m3/h per DMA lost from the pipes: background plus scripted leaks and bursts."""
        # Leakage follows pressure: less of it while the tank is empty.
        pressure = physics.night_pressure_factor(local) * np.sqrt(self.supply_fraction)
        leakage = self.background_leak * pressure
        for item in self._resolved:
            if item.active and item.incident.kind in ("background_leak", "burst"):
                incident, v = item.incident, item.index
                rate = incident.magnitude * (self.mean_inflow[v] if incident.relative else 1.0)
                leakage[v] += rate
                incident.effect.setdefault("leak_m3h", round(float(rate), 4))
                incident.effect.setdefault(
                    "share_of_mean_inflow", round(float(rate / self.mean_inflow[v]), 4))
                incident.effect.setdefault("dma", self.county.dmas[v].id)
                incident.effect["lost_m3"] = round(
                    float(incident.effect.get("lost_m3", 0.0)) + float(rate) * STEP_H, 3)
        return leakage

    def _pumps(self, local: datetime) -> np.ndarray:
        """Run the well pumps by tank level; return the flow into each village tank, m3/h."""
        if local.hour == 0 and local.minute < STEP.total_seconds() / 60:
            self.hours_today[:] = 0.0
        surging = self.demand_factor > 1.0
        declines = np.zeros_like(self.surge_decline)
        for item in self._resolved:
            if item.active and item.incident.kind == "demand_surge":
                declines[item.index] += item.incident.aquifer_decline_m_per_day
        self.surge_decline = np.where(
            surging, self.surge_decline + declines * STEP_H / 24,
            np.maximum(0.0, self.surge_decline - AQUIFER_RECOVERY_M_PER_DAY * STEP_H / 24))
        rest = (self.well_static + self.well_decline * physics.summer_weight(local)
                + self.surge_decline[self.well_village])
        fill = (self.tank_volume / self.tank_capacity)[self.well_village]
        start_at = np.take(PUMP_START_FILL, self.well_rank)
        stop_at = np.take(PUMP_STOP_FILL, self.well_rank)
        self.pump_on = np.where(fill < start_at, True, np.where(fill > stop_at, False,
                                                                 self.pump_on))
        # The pump can lower the water only to 2 m above its intake.
        max_flow = np.maximum(0.0, (self.well_intake - 2.0 - rest) / self.well_drawdown)
        flow = np.minimum(self.well_rated, max_flow)
        running = (self.pump_on & (self.hours_today < self.well_allowed_h) & ~self.pump_fault
                   & (flow > 0.05))
        self.pump_flow = np.where(running, flow, 0.0)
        target = rest + self.well_drawdown * self.pump_flow
        self.well_level = physics.relax(self.well_level, target, STEP_H, WELL_RESPONSE_TAU_H)
        self.hours_today += running * STEP_H
        self.run_hours += running * STEP_H
        return np.bincount(self.well_village, self.pump_flow, len(self.county.villages))

    # ------------------------------------------------------------------ meters

    def _meters(self, delivered_m3: np.ndarray) -> None:
        self.hh_true += delivered_m3
        registered = delivered_m3 * (1 - self.hh_underreg)
        self.hh_registered += registered
        self.balance -= registered * self.hh_tariff

    def _prepaid(self, events: list[SimEvent]) -> None:
        """Top-ups, then the valve: shut at zero balance, tamper or a dead battery."""
        if self.now.minute < STEP.total_seconds() / 60:  # once an hour
            low = np.flatnonzero((self.balance < LOW_BALANCE_YUAN) & ~self.hold_zero)
            paying = low[self.rng.random(low.size) < TOP_UP_PROBABILITY_PER_HOUR]
            self.balance[paying] += self.rng.uniform(*TOP_UP_YUAN, paying.size).round(0)
        battery_dead = np.zeros_like(self.battery_low)
        for item in self._resolved:
            if item.active and item.incident.kind == "low_battery" and item.incident.magnitude:
                battery_dead[item.index] = self.battery_low_h[item.index] >= \
                    item.incident.magnitude
        self.battery_low_h[self.battery_low] += STEP_H
        should_open = (self.balance > 0) & ~self.tamper & ~battery_dead & ~self.remote_closed
        closing = np.flatnonzero(self.valve_open & ~should_open)
        opening = np.flatnonzero(~self.valve_open & should_open)
        self.valve_open[closing] = False
        self.valve_open[opening] = True
        for h in closing:
            household = self.county.households[h]
            events.append(self._meter_event(int(h), "valve_closed",
                                            "critical" if household.monitored else "warning",
                                            True))
            self._note_valve(int(h), "valve_closed_at")
        for h in opening:
            event = self._meter_event(int(h), "valve_closed", "info", False)
            event.message = "valve reopened"
            events.append(event)
            self._note_valve(int(h), "valve_reopened_at")

    def _note_valve(self, h: int, key: str) -> None:
        """Record when a household incident's valve closed, and when it opened again."""
        for item in self._resolved:
            if item.index != h or item.incident.kind not in ("zero_balance", "tamper",
                                                             "low_battery"):
                continue
            effect = item.incident.effect
            if key == "valve_closed_at" and item.active:
                effect.setdefault(key, self.now.isoformat())
            elif key == "valve_reopened_at" and "valve_closed_at" in effect:
                effect.setdefault(key, self.now.isoformat())

    # ------------------------------------------------------------------ quality

    def _quality(self, local: datetime) -> None:
        """Chlorine follows the dosing with a lag; turbidity, pH, conductivity, temperature."""
        n_a = len(self.county.analysers)
        target = np.where(self.chlorinator_ok, self.chlorine_setpoint, CHLORINE_FLOOR_MGL)
        self.outlet_chlorine = physics.relax(self.outlet_chlorine, target, STEP_H, 0.75)
        # Taps see the outlet water a few hours later, with less chlorine left.
        tap_target = self.outlet_chlorine * self.tap_ratio
        at_tap = physics.relax(self.an_chlorine, tap_target[self.an_village], STEP_H, 2.0)
        self.an_chlorine = np.where(self.an_outlet, self.outlet_chlorine[self.an_village],
                                    at_tap)
        noise = self.rng.normal(0.0, 1.0, (5, n_a))
        self.q_chlorine = np.maximum(0.0, self.an_chlorine * (1 + 0.04 * noise[0]))
        self.q_turbidity = self.an_turbidity_base * np.exp(0.15 * noise[1])
        for item in self._resolved:
            if item.active and item.incident.kind == "turbidity_event":
                incident = item.incident
                span = ((incident.end or self.now + timedelta(hours=6)) - incident.start)
                done = (self.now - incident.start) / max(span, STEP)
                extra = incident.magnitude * max(0.0, 1 - abs(2 * done - 1))
                self.q_turbidity[item.analysers] += extra
                peak = float(self.q_turbidity[item.analysers].max()) if item.analysers else 0.0
                incident.effect["peak_ntu"] = round(
                    max(float(incident.effect.get("peak_ntu", 0.0)), peak), 3)
        self.q_ph = self.an_ph_base + 0.03 * noise[2]
        self.q_conductivity = self.an_conductivity_base * (1 + 0.01 * noise[3])
        season = physics.summer_weight(local)
        # Groundwater at the outlet barely follows the season; water at a tap does.
        self.q_temperature = np.where(self.an_outlet, 10.0 + 3.0 * season,
                                      6.0 + 14.0 * season) + 0.2 * noise[4]
        self._note_chlorine()

    def _note_chlorine(self) -> None:
        for item in self._resolved:
            if not item.active or item.incident.kind != "chlorinator_failure":
                continue
            effect, stamp = item.incident.effect, self.now.isoformat()
            for a in item.analysers:
                limit = OUTLET_LIMIT_MGL if self.an_outlet[a] else TAP_LIMIT_MGL
                site = "outlet" if self.an_outlet[a] else "tap"
                if self.q_chlorine[a] < limit:
                    effect.setdefault(f"{site}_below_limit_at", stamp)
                key = f"{site}_min_chlorine_mgl"
                effect[key] = round(min(float(effect.get(key, 99.0)),
                                        float(self.q_chlorine[a])), 3)

    # ------------------------------------------------------------------ ground truth

    def _record_dry_tanks(self) -> None:
        for v in np.flatnonzero(self.tank_volume <= 0.01 * self.tank_capacity):
            tank = self.county.tanks[v].id
            if tank in self.tank_dry_at:
                continue
            self.tank_dry_at[tank] = self.now
            for item in self._resolved:
                if item.incident.kind == "demand_surge" and item.index == v and item.active:
                    item.incident.effect.setdefault("tank_dry_at", self.now.isoformat())

    def _snapshot(self, events: list[SimEvent]) -> DeviceStates:
        running = self.pump_flow > 0
        load = self.pump_flow / self.well_rated
        head = self.well_level + self.well_delivery + 5.0  # lift + delivery + friction
        power_kw = 9.81 * self.pump_flow / 3600 * head / PUMP_EFFICIENCY
        current = power_kw * 1000 / (math.sqrt(3) * MOTOR_VOLTAGE_V * MOTOR_POWER_FACTOR)
        noise = self.rng.normal(0.0, 1.0, (3, len(self.county.wells)))
        elapsed_days = (self.now - self.start).total_seconds() / 86400
        return DeviceStates(
            time=self.now,
            meter_volume_m3=self.hh_registered.copy(),
            balance_yuan=self.balance.copy(),
            valve_open=self.valve_open.copy(),
            battery_low=self.battery_low.copy(),
            tamper=self.tamper.copy(),
            meter_offline=self.offline.copy(),
            meter_clock_offset_s=np.rint(self.clock_offset_s + self.clock_drift_s_per_day
                                         * elapsed_days).astype(np.int64),
            pump_running=running,
            # A drive slows the pump when the water is near the intake.
            pump_frequency_hz=np.where(running, 50.0 * np.clip(load, 0.6, 1.0)
                                       + 0.05 * noise[0], 0.0),
            pump_current_a=np.where(running, current * (1 + 0.02 * noise[1]), 0.0),
            pump_flow_m3h=np.where(running, self.pump_flow * (1 + 0.01 * noise[2]), 0.0),
            pump_pressure_mpa=np.where(running, (self.well_delivery + 5.0) * 0.00981, 0.0),
            well_level_m=self.well_level.copy(),
            pump_run_hours=self.run_hours.copy(),
            pump_fault_code=np.where(self.pump_fault, PUMP_FAULT_CODE, 0),
            tank_level_m=self.tank_volume / self.tank_capacity * self.tank_height,
            tank_volume_m3=self.tank_volume.copy(),
            inflow_m3h=self.inflow_rate.copy(),
            inflow_volume_m3=self.inflow_volume.copy(),
            turbidity_ntu=self.q_turbidity,
            free_chlorine_mgl=self.q_chlorine,
            ph=self.q_ph,
            conductivity_uscm=self.q_conductivity,
            temperature_c=self.q_temperature,
            events=events,
        )
