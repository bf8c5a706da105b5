"""Scriptable incidents: what goes wrong in the county, when, and how badly.

A scenario is a JSON list of :class:`Incident`. ``default_scenario`` scripts a representative
mix. The simulator writes the incidents it ran, with their measured effect (e.g. the leak in
m3/h, the moment a tank ran dry), to ``incidents.json``: the ground truth detection is scored on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter

from simulator.county import County

IncidentKind = Literal[
    "background_leak", "burst", "customer_leak", "demand_surge", "chlorinator_failure",
    "turbidity_event", "meter_offline", "low_battery", "zero_balance", "tamper", "pump_fault",
]

#: what ``target`` names, per kind
TARGETS: dict[str, str] = {
    "background_leak": "branch", "burst": "branch", "customer_leak": "household",
    "demand_surge": "village", "chlorinator_failure": "analyser",
    "turbidity_event": "analyser", "meter_offline": "household", "low_battery": "household",
    "zero_balance": "household", "tamper": "household", "pump_fault": "well",
}


class Incident(BaseModel):
    kind: IncidentKind
    target: str = Field(description="branch, household, village, analyser or well id")
    start: AwareDatetime
    end: AwareDatetime | None = None
    magnitude: float = Field(
        default=0.0,
        description="leaks: m3/h, or a fraction of the DMA's mean inflow when <= 1 and "
        "relative=True; demand_surge: demand factor; turbidity_event: peak NTU",
    )
    relative: bool = False
    aquifer_decline_m_per_day: float = 0.0
    # Filled in by the simulator as it runs:
    effect: dict[str, float | str] = Field(default_factory=dict)

    def active(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


SCENARIO = TypeAdapter(list[Incident])


def load_scenario(path: Path) -> list[Incident]:
    return SCENARIO.validate_json(path.read_bytes())


def write_incidents(path: Path, incidents: list[Incident]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SCENARIO.dump_json(incidents, indent=1))


def default_scenario(county: County, start: datetime, days: float, seed: int) -> list[Incident]:
    """A representative mix over the run, spread over the villages; deterministic."""
    rng = np.random.default_rng(seed + 1)
    span = timedelta(days=days)

    def at(fraction: float) -> datetime:
        return start + span * fraction

    def pick(items: list) -> object:
        return items[int(rng.integers(0, len(items)))]

    branches = [b for dma in county.dmas for b in dma.branches]
    households = county.households
    incidents = [
        Incident(kind="burst", target=pick(branches).id, start=at(0.35), end=at(0.55),
                 magnitude=0.25, relative=True),
        Incident(kind="background_leak", target=pick(branches).id, start=at(0.2),
                 magnitude=0.05, relative=True),
        Incident(kind="customer_leak", target=pick(households).id, start=at(0.3),
                 magnitude=0.03),
        Incident(kind="demand_surge", target=pick(county.villages).id, start=at(0.1),
                 magnitude=1.8, aquifer_decline_m_per_day=3.0),
        Incident(kind="meter_offline", target=pick(households).id, start=at(0.4),
                 end=at(0.7)),
        Incident(kind="low_battery", target=pick(households).id, start=at(0.25)),
        Incident(kind="zero_balance", target=next(h.id for h in households if h.monitored)
                 if any(h.monitored for h in households) else households[0].id,
                 start=at(0.45), end=at(0.8)),
        Incident(kind="tamper", target=pick(households).id, start=at(0.6), end=at(0.62)),
        Incident(kind="pump_fault", target=pick(county.wells).id, start=at(0.5),
                 end=at(0.53)),
    ]
    if county.analysers:
        outlets = [a for a in county.analysers if a.site == "outlet"] or county.analysers
        incidents += [
            Incident(kind="chlorinator_failure", target=pick(outlets).id, start=at(0.4),
                     end=at(0.6)),
            Incident(kind="turbidity_event", target=pick(county.analysers).id, start=at(0.65),
                     end=at(0.68), magnitude=4.0),
        ]
    return incidents
