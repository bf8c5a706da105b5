"""Simulator device states as the gateways send them: which fields, when, rounded how.

Shared by the benchmark scripts that record states without going through MQTT
(``from _wire import ...``: a script's own folder is first on ``sys.path``). The rounding is
``simulator.messages``'; ``tests/benchmarks/test_detection_smoke.py`` proves a recorder built
on this equal to the messages the gateways publish.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from common.register import County
from simulator.engine import DeviceStates


def due(moment: datetime, every_min: int) -> bool:
    """Whether a device reporting every ``every_min`` minutes reports at ``moment``."""
    return int(moment.timestamp()) // 60 % every_min == 0


def pump_columns(states: DeviceStates) -> dict[str, np.ndarray]:
    """A pump controller's reading per well (``common.schema.FIELDS["pump"]``)."""
    return {"running": states.pump_running, "frequency_hz": states.pump_frequency_hz.round(2),
            "current_a": states.pump_current_a.round(1),
            "flow_m3h": states.pump_flow_m3h.round(2),
            "outlet_pressure_mpa": states.pump_pressure_mpa.round(3),
            "well_level_m": states.well_level_m.round(2),
            "run_hours": states.pump_run_hours.round(2),
            "fault_code": states.pump_fault_code}


def tank_columns(states: DeviceStates) -> dict[str, np.ndarray]:
    """A tank level sensor's reading per tank."""
    return {"level_m": states.tank_level_m.round(3),
            "volume_m3": states.tank_volume_m3.round(2)}


def inflow_columns(states: DeviceStates) -> dict[str, np.ndarray]:
    """A DMA inflow meter's reading per DMA."""
    return {"flow_m3h": states.inflow_m3h.round(3),
            "volume_m3": states.inflow_volume_m3.round(3)}


def quality_columns(states: DeviceStates) -> dict[str, np.ndarray]:
    """Every water-quality parameter per analyser (each analyser sends only its own)."""
    return {"turbidity_ntu": states.turbidity_ntu.round(3),
            "free_chlorine_mgl": states.free_chlorine_mgl.round(3),
            "ph": states.ph.round(2), "conductivity_uscm": states.conductivity_uscm.round(1),
            "temperature_c": states.temperature_c.round(2)}


def analyser_groups(county: County) -> dict[tuple[str, ...], np.ndarray]:
    """Analysers (their rows in ``county.analysers``) grouped by the parameters they measure."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for row, analyser in enumerate(county.analysers):
        groups.setdefault(tuple(analyser.parameters), []).append(row)
    return {parameters: np.array(rows) for parameters, rows in groups.items()}
