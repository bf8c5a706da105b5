"""One simulated county shared by several device simulators, safe to use from their threads.

The engine's ``CountySimulation.step()`` returns ``DeviceStates``: what every device would
answer at the end of the step. The device simulators serve the latest states; a test or a
demo moves time on with ``advance``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulator.county import County, build_county
from simulator.engine import CountySimulation, DeviceStates
from simulator.incidents import Incident

QUALITY_FIELDS = ("turbidity_ntu", "free_chlorine_mgl", "ph", "conductivity_uscm",
                  "temperature_c")


@dataclass(frozen=True)
class MeterState:
    volume_m3: float
    balance_yuan: float
    valve_open: bool
    battery_low: bool
    tamper: bool
    clock: datetime  # aware: the true time plus the meter clock's offset


class SimulatedField:
    """What the devices of a simulated county show now.

    Device simulators answer from their own threads (socket handlers, the pymodbus event
    loop) while a test or demo advances time, so every access takes one lock.

    A remote valve command goes to the engine (``CountySimulation.command_valve``: a close
    holds until an open, an open hands the valve back to the prepaid logic) and moves the
    valve at once, as a meter's motor does within seconds, so the meter's reply already
    shows it.
    """

    def __init__(self, simulation: CountySimulation) -> None:
        self.simulation = simulation
        self._lock = threading.Lock()
        county = simulation.county
        self._meter_ix = {h.meter: i for i, h in enumerate(county.households)}
        self._well_ix = {w.id: i for i, w in enumerate(county.wells)}
        self._analyser_ix = {a.id: i for i, a in enumerate(county.analysers)}
        self.states: DeviceStates = simulation.step()  # devices show the end of a step

    @classmethod
    def build(cls, *, seed: int, villages: int, households_per_village: int, start: datetime,
              incidents: list[Incident] | None = None) -> SimulatedField:
        """A seeded county (``simulator.county.build_county``) one step after ``start``."""
        county = build_county(seed, villages, households_per_village)
        return cls(CountySimulation(county, incidents or [], start, seed))

    @property
    def county(self) -> County:
        return self.simulation.county

    def advance(self, steps: int = 1) -> None:
        """Run the physics ``steps`` 5-minute steps forward."""
        with self._lock:
            for _ in range(steps):
                self.states = self.simulation.step()

    # ------------------------------------------------------------------ meters

    def has_meter(self, address: str) -> bool:
        return address in self._meter_ix

    def meter(self, address: str) -> MeterState | None:
        """A household meter by its 14-digit address; None while it does not answer."""
        index = self._meter_ix[address]
        with self._lock:
            s = self.states
            if s.meter_offline[index]:
                return None
            return MeterState(
                volume_m3=float(s.meter_volume_m3[index]),
                balance_yuan=float(s.balance_yuan[index]),
                valve_open=bool(s.valve_open[index]), battery_low=bool(s.battery_low[index]),
                tamper=bool(s.tamper[index]),
                clock=s.time + timedelta(seconds=int(s.meter_clock_offset_s[index])),
            )

    def command_valve(self, address: str, open_valve: bool) -> None:
        index = self._meter_ix[address]
        with self._lock:
            self.simulation.command_valve(address, open_valve)
            # An open command opens only where the prepaid logic allows it.
            prepaid_allows = bool(self.states.balance_yuan[index] > 0
                                  and not self.states.tamper[index])
            is_open = open_valve and prepaid_allows
            self.simulation.valve_open[index] = is_open
            self.states.valve_open[index] = is_open

    # ------------------------------------------------------------------ Modbus devices

    def pump(self, well: str) -> dict[str, bool | int | float]:
        """A well's drive values, by contract field (``PumpReading``)."""
        index = self._well_ix[well]
        with self._lock:
            s = self.states
            return {
                "running": bool(s.pump_running[index]),
                "frequency_hz": float(s.pump_frequency_hz[index]),
                "current_a": float(s.pump_current_a[index]),
                "flow_m3h": float(s.pump_flow_m3h[index]),
                "outlet_pressure_mpa": float(s.pump_pressure_mpa[index]),
                "well_level_m": float(s.well_level_m[index]),
                "run_hours": float(s.pump_run_hours[index]),
                "fault_code": int(s.pump_fault_code[index]),
            }

    def analyser(self, analyser: str) -> dict[str, float]:
        """An analyser's values by contract field; NaN for a parameter it has no probe for."""
        index = self._analyser_ix[analyser]
        measured = set(self.county.analysers[index].parameters)
        with self._lock:
            return {name: float(getattr(self.states, name)[index]) if name in measured
                    else math.nan for name in QUALITY_FIELDS}
