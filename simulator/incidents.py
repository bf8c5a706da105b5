"""Scriptable incidents: what goes wrong in the county, when, and how badly.

A scenario is a JSON or YAML list of :class:`Incident` (or ``{"incidents": [...]}``); in a
scenario file ``start`` and ``end`` may be absolute (ISO 8601 with an offset) or relative to
the simulation start (an ISO 8601 duration like ``P1DT2H``, or seconds). ``default_scenario``
scripts a representative mix. The simulator fills in each incident's measured ``effect``
(the leak in m3/h and as a share of the DMA's inflow, the moment a tank ran dry, when
chlorine fell below the limit, ...) and writes them to ``incidents.json``: the ground truth
detection is scored on.

Magnitudes, per kind:

- ``background_leak``, ``burst`` (target: branch line): m3/h, or with ``relative`` a
  fraction of the DMA's mean inflow (0.03 scripts a 3% leak).
- ``customer_leak`` (household): m3/h flowing continuously through the meter.
- ``demand_surge`` (village): demand factor (1.8 = 80% more); ``aquifer_decline_m_per_day``
  lowers the wells' rest level while it lasts (a dry summer).
- ``turbidity_event`` (village: every analyser there; or one analyser): peak extra NTU.
- ``low_battery`` (household): hours until the meter closes its valve to force a battery
  change; 0 never closes it.
- ``chlorinator_failure`` (village, or any of its analysers), ``meter_offline``,
  ``zero_balance``, ``tamper`` (households) and ``pump_fault`` (well): no magnitude.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

from simulator import physics
from simulator.county import BASE_LPCD, County

IncidentKind = Literal[
    "background_leak", "burst", "customer_leak", "demand_surge", "chlorinator_failure",
    "turbidity_event", "meter_offline", "low_battery", "zero_balance", "tamper", "pump_fault",
]

#: what ``target`` names, per kind
TARGETS: dict[str, tuple[str, ...]] = {
    "background_leak": ("branch",), "burst": ("branch",), "customer_leak": ("household",),
    "demand_surge": ("village",), "chlorinator_failure": ("village", "analyser"),
    "turbidity_event": ("village", "analyser"), "meter_offline": ("household",),
    "low_battery": ("household",), "zero_balance": ("household",), "tamper": ("household",),
    "pump_fault": ("well",),
}
Effect = dict[str, float | str]


class ScenarioError(ValueError):
    """A scenario that cannot run on this county."""


class Incident(BaseModel):
    kind: IncidentKind
    target: str = Field(description="branch, household, village, analyser or well id")
    start: AwareDatetime
    end: AwareDatetime | None = None
    magnitude: float = Field(default=0.0, ge=0.0, allow_inf_nan=False,
                             description="per kind; see the module documentation")
    relative: bool = Field(default=False,
                           description="leaks: magnitude is a fraction of the DMA mean inflow")
    aquifer_decline_m_per_day: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    #: filled in by the simulator as it runs: the measured effect (ground truth)
    effect: Effect = Field(default_factory=dict)

    def active(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


class _ScenarioEntry(Incident):
    """An incident as written in a scenario file: times may be offsets from the start."""

    # timedelta first: a bare number is an offset in seconds, not a Unix time.
    start: timedelta | AwareDatetime  # type: ignore[assignment]
    end: timedelta | AwareDatetime | None = None  # type: ignore[assignment]

    def resolve(self, sim_start: datetime | None) -> Incident:
        fields = self.model_dump()
        for name in ("start", "end"):
            value = fields[name]
            if isinstance(value, timedelta):
                if sim_start is None:
                    raise ScenarioError(f"{self.kind} {self.target}: relative {name} needs "
                                        "the simulation start")
                fields[name] = sim_start + value
        return Incident.model_validate(fields)


SCENARIO = TypeAdapter(list[Incident])
_ENTRIES = TypeAdapter(list[_ScenarioEntry])


def load_scenario(path: Path, start: datetime | None = None) -> list[Incident]:
    """Read a JSON or YAML scenario; relative times count from ``start``."""
    text = path.read_text()
    try:
        raw: Any = (yaml.safe_load(text) if path.suffix in (".yaml", ".yml")
                    else json.loads(text))
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: not a scenario file: {exc}") from exc
    if isinstance(raw, dict):
        raw = raw.get("incidents", [])
    try:
        entries = _ENTRIES.validate_python(raw)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    return [entry.resolve(start) for entry in entries]


def write_incidents(path: Path, incidents: list[Incident]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SCENARIO.dump_json(incidents, indent=1))


def target_index(county: County) -> dict[str, dict[str, object]]:
    """Every id an incident may target, per target kind."""
    return {
        "branch": {b.id: b for d in county.dmas for b in d.branches},
        "household": {h.id: h for h in county.households},
        "village": {v.id: v for v in county.villages},
        "analyser": {a.id: a for a in county.analysers},
        "well": {w.id: w for w in county.wells},
    }


def check_targets(county: County, incidents: list[Incident]) -> None:
    """Raise ScenarioError for an incident whose target is not in the county."""
    index = target_index(county)
    for incident in incidents:
        if not any(incident.target in index[kind] for kind in TARGETS[incident.kind]):
            raise ScenarioError(f"{incident.kind}: no {' or '.join(TARGETS[incident.kind])} "
                                f"{incident.target!r} in this county")
        if incident.end is not None and incident.end <= incident.start:
            raise ScenarioError(f"{incident.kind} {incident.target}: end before start")


def _surge(county: County, village: str, start: datetime) -> Incident:
    """A dry-summer surge sized to run the village tank dry within about a day, any season.

    Demand rises to 1.3x what the village's wells can deliver in their allowed hours, and
    the aquifer falls 3 m a day while it lasts.
    """
    local = (start.astimezone(UTC) + timedelta(hours=county.utc_offset_hours)).replace(
        tzinfo=None)
    capacity = sum(w.rated_flow_m3h * w.allowed_hours_per_day
                   for w in county.wells if w.village == village)
    persons = sum(v.population for v in county.villages if v.id == village)
    daily = persons * BASE_LPCD / 1000 * physics.seasonal_factor(local)
    magnitude = float(np.clip(1.3 * capacity / daily, 1.5, 6.0))
    return Incident(kind="demand_surge", target=village, start=start,
                    magnitude=round(magnitude, 2), aquifer_decline_m_per_day=3.0)


def default_scenario(county: County, start: datetime, days: float, seed: int) -> list[Incident]:
    """A representative mix over the run, spread over the villages; deterministic."""
    rng = np.random.default_rng(seed + 1)
    span = timedelta(days=days)

    def at(fraction: float) -> datetime:
        return start + span * fraction

    def pick(items: list[Any]) -> Any:
        return items[int(rng.integers(0, len(items)))]

    branches = [b for dma in county.dmas for b in dma.branches]
    households = county.households
    monitored = [h for h in households if h.monitored] or households
    incidents = [
        Incident(kind="burst", target=pick(branches).id, start=at(0.35), end=at(0.55),
                 magnitude=0.25, relative=True),
        Incident(kind="background_leak", target=pick(branches).id, start=at(0.2),
                 magnitude=0.05, relative=True),
        Incident(kind="customer_leak", target=pick(households).id, start=at(0.3),
                 magnitude=0.03),
        _surge(county, pick(county.villages).id, at(0.1)),
        Incident(kind="meter_offline", target=pick(households).id, start=at(0.4),
                 end=at(0.7)),
        Incident(kind="low_battery", target=pick(households).id, start=at(0.25)),
        Incident(kind="zero_balance", target=pick(monitored).id, start=at(0.45), end=at(0.8)),
        Incident(kind="tamper", target=pick(households).id, start=at(0.6), end=at(0.62)),
        Incident(kind="pump_fault", target=pick(county.wells).id, start=at(0.5),
                 end=at(0.53)),
    ]
    if county.analysers:
        schemes = sorted({a.village for a in county.analysers if a.site == "outlet"}
                         or {a.village for a in county.analysers})
        incidents += [
            Incident(kind="chlorinator_failure", target=pick(schemes), start=at(0.4),
                     end=at(0.6)),
            Incident(kind="turbidity_event", target=pick(county.analysers).id, start=at(0.65),
                     end=at(0.68), magnitude=4.0),
        ]
    return incidents
