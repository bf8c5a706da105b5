"""Regenerate the stored reference series the shortage, quality and device tests read.

Run once (``.venv/bin/python tests/analysis/data/make_reference.py``); the outputs are
committed and the tests never call the simulator for them, so a later change to the
simulator cannot move the reference. Each case writes:

- ``<case>.csv.gz``: long readings (time ISO 8601 UTC, device, kind, field, value) as the
  simulator's gateways publish them (``tests.analysis.simdata``), trimmed to the kinds and
  fields the case needs;
- ``<case>.register.json``: the asset register (``common.register.County``);
- ``<case>.truth.json``: the scripted incidents with the effect the simulator measured
  (when the tank ran dry, when chlorine fell below the limit, when a valve closed, ...).

Cases: ``shortage`` (a dry-summer demand surge in v002 that drains its tank ~12 days
later; v001 stays clean), ``quality`` (a chlorinator failure, then a turbidity event at
v001's outlet), ``devices`` (a meter offline, a low battery, a monitored household's valve
closed at zero balance, tamper, a pump drive fault).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from simulator.incidents import SCENARIO, Incident  # noqa: E402
from tests.analysis.simdata import Simulated, simulate  # noqa: E402

HERE = Path(__file__).resolve().parent
#: local midnight, 1 June (UTC+8)
START = datetime(2026, 5, 31, 16, 0, tzinfo=UTC)


def at(days: float = 0.0, hours: float = 0.0) -> datetime:
    return START + timedelta(days=days, hours=hours)


def write(case: str, sim: Simulated, keep: dict[str, list[str]],
          villages: list[str] | None = None) -> None:
    frame = sim.readings
    wanted = pd.Series(False, index=frame.index)
    for kind, fields in keep.items():
        wanted |= (frame["kind"] == kind) & frame["field"].isin(fields)
    frame = frame[wanted]
    if villages is not None:
        devices = _devices_of(sim, villages)
        frame = frame[frame["device"].isin(devices)]
    frame = frame.sort_values(["time", "device", "field"], kind="stable")
    out = frame.assign(time=frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.to_csv(HERE / f"{case}.csv.gz", index=False, float_format="%.6g")
    sim.county.write(HERE / f"{case}.register.json")
    (HERE / f"{case}.truth.json").write_bytes(SCENARIO.dump_json(sim.incidents, indent=1))
    sys.stderr.write(f"{case}: {len(out):,} rows\n")


def _devices_of(sim: Simulated, villages: list[str]) -> set[str]:
    county = sim.county
    return ({h.meter for h in county.households if h.village in villages}
            | {w.id for w in county.wells if w.village in villages}
            | {t.id for t in county.tanks if t.village in villages}
            | {d.inflow_meter for d in county.dmas if d.village in villages}
            | {a.id for a in county.analysers if a.village in villages})


def shortage() -> None:
    # Sized as benchmarks/detection.py's size_surge does for this county and start: demand
    # x2.5 and the aquifer falling ~1 m/day, so the tank runs dry about 12 days later.
    surge = Incident(kind="demand_surge", target="v002", start=at(4), magnitude=2.5,
                     aquifer_decline_m_per_day=1.008)
    sim = simulate(3, 20, 20, seed=3, incidents=[surge], start=START)
    write("shortage", sim, {"pump": ["running", "flow_m3h", "well_level_m", "fault_code",
                                     "current_a"],
                            "tank": ["volume_m3"], "dma_inflow": ["flow_m3h", "volume_m3"]},
          villages=["v001", "v002"])


def quality() -> None:
    incidents = [
        Incident(kind="chlorinator_failure", target="v001", start=at(2, 3), end=at(2, 11)),
        Incident(kind="turbidity_event", target="aq-v001-outlet", start=at(3, 5),
                 end=at(3, 9), magnitude=3.0),
    ]
    sim = simulate(2, 10, 4.5, seed=5, incidents=incidents, start=START)
    write("quality", sim, {"quality": ["turbidity_ntu", "free_chlorine_mgl", "ph",
                                       "conductivity_uscm", "temperature_c"]})


def devices() -> None:
    sim_county = simulate(2, 12, 0.01, seed=11, start=START).county
    monitored = next(h.id for h in sim_county.households if h.monitored and h.village == "v002")
    incidents = [
        Incident(kind="meter_offline", target="v001-h0002", start=at(1, 2), end=at(1, 14)),
        Incident(kind="low_battery", target="v001-h0003", start=at(0, 20), magnitude=24),
        Incident(kind="zero_balance", target=monitored, start=at(1), end=at(2)),
        Incident(kind="tamper", target="v002-h0004", start=at(1, 8), end=at(1, 14)),
        Incident(kind="pump_fault", target="pump-v001-1", start=at(1, 16), end=at(1, 19)),
    ]
    sim = simulate(2, 12, 3, seed=11, incidents=incidents, start=START)
    write("devices", sim, {
        "meter": ["volume_m3", "balance_yuan", "valve", "battery_low", "tamper"],
        "pump": ["running", "flow_m3h", "current_a", "fault_code", "frequency_hz",
                 "well_level_m"],
        "tank": ["volume_m3"], "dma_inflow": ["flow_m3h", "volume_m3"],
        "quality": ["free_chlorine_mgl"]})


if __name__ == "__main__":
    shortage()
    quality()
    devices()
