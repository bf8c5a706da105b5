"""The planner's inputs and output, as pydantic models.

Times are timezone-aware datetimes; durations are minutes; distances km. The API maps its
tickets and crews onto these; nothing here knows about the database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator


class Skill(StrEnum):
    PIPE = "pipe"
    PUMP_ELECTRICAL = "pump_electrical"
    METER = "meter"
    WATER_QUALITY = "water_quality"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class TicketStatus(StrEnum):
    """What the planner needs of a ticket's lifecycle state.

    ``open`` and ``scheduled`` tickets are (re)planned freely; ``en_route`` and
    ``in_progress`` ones are pinned to their crew and come first on its route.
    """

    OPEN = "open"
    SCHEDULED = "scheduled"
    EN_ROUTE = "en_route"
    IN_PROGRESS = "in_progress"


PINNED_STATUSES = (TicketStatus.IN_PROGRESS, TicketStatus.EN_ROUTE)


class Location(BaseModel):
    """A point in WGS84; ``key`` (a village id, ``depot``) lets a road table look it up."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    key: str | None = None


class PlanningTicket(BaseModel):
    id: str = Field(min_length=1)
    location: Location
    village: str | None = None
    township: str | None = Field(default=None,
                                 description="township id, matched against crew zones")
    priority: Priority = Priority.NORMAL
    skill: Skill = Field(description="the skill a crew needs for this work")
    sla_deadline: AwareDatetime = Field(description="the work must be finished by then")
    service_minutes: float = Field(
        gt=0, description="estimated work on site; for work in progress, what is left")
    status: TicketStatus = TicketStatus.OPEN
    crew: str | None = Field(default=None, description="crew it is assigned to, if any")

    @model_validator(mode="after")
    def _pinned_work_names_its_crew(self) -> PlanningTicket:
        if self.status in PINNED_STATUSES and self.crew is None:
            raise ValueError(f"ticket {self.id} is {self.status.value} but names no crew")
        return self

    @property
    def pinned(self) -> bool:
        return self.status in PINNED_STATUSES


class Shift(BaseModel):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Shift:
        if self.end <= self.start:
            raise ValueError(f"shift ends ({self.end}) before it starts ({self.start})")
        return self


class PlanningCrew(BaseModel):
    id: str = Field(min_length=1)
    skills: frozenset[Skill] = Field(min_length=1)
    home: Location = Field(description="home base: each shift starts and ends here")
    shifts: list[Shift] = Field(min_length=1, description="working hours to plan, in order")
    zones: frozenset[str] = Field(
        default_factory=frozenset, description="township ids it covers; empty: all")
    position: Location | None = Field(
        default=None, description="last reported position; None: at home base")
    available_from: AwareDatetime | None = Field(
        default=None, description="free for new work from then (besides pinned work)")

    @model_validator(mode="after")
    def _shifts_in_order(self) -> PlanningCrew:
        for before, after in zip(self.shifts, self.shifts[1:], strict=False):
            if after.start < before.end:
                raise ValueError(f"crew {self.id}: shifts overlap or are out of order")
        return self

    def covers(self, township: str | None) -> bool:
        return not self.zones or township is None or township in self.zones


class PlanningProblem(BaseModel):
    now: AwareDatetime = Field(description="the moment the plan is made")
    tickets: list[PlanningTicket]
    crews: list[PlanningCrew]


def _default_priority_weights() -> dict[Priority, int]:
    return {Priority.URGENT: 8, Priority.HIGH: 4, Priority.NORMAL: 2, Priority.LOW: 1}


class PlannerOptions(BaseModel):
    """How the planner weighs things and how long it searches.

    Costs are in driving minutes: one SLA breach of a ticket of weight w costs
    ``w x breach_penalty_minutes`` minutes of driving, so with the defaults the planner
    avoids breaches first and saves travel second.
    """

    time_limit_s: float = Field(default=5.0, gt=0, description="OR-Tools search limit")
    solution_limit: int | None = Field(
        default=None, ge=1,
        description="stop after this many improving steps: the same plan on any machine")
    priority_weights: dict[Priority, int] = Field(default_factory=_default_priority_weights)
    breach_penalty_minutes: float = Field(
        default=10_000.0, gt=0,
        description="per unit of priority weight, per breached ticket: above any travel saving")
    unassigned_penalty_minutes: float = Field(
        default=240.0, gt=0, description="per unit of priority weight, per ticket left over")
    lateness_penalty_per_hour: float = Field(
        default=10.0, ge=0,
        description="minutes of driving per hour a breached ticket is late, per weight unit")
    return_to_base: bool = Field(default=True, description="shifts end at the home base")
    warm_start: bool = Field(default=True,
                             description="start the search from the greedy plan")

    @model_validator(mode="after")
    def _every_priority_weighed(self) -> PlannerOptions:
        missing = set(Priority) - set(self.priority_weights)
        if missing:
            raise ValueError(f"priority_weights lacks {sorted(p.value for p in missing)}")
        if any(weight < 1 for weight in self.priority_weights.values()):
            raise ValueError("priority weights must be at least 1")
        return self


UnassignedReason = Literal["no_skilled_crew", "outside_zones", "does_not_fit_shift",
                           "no_capacity"]


class Stop(BaseModel):
    ticket: str
    village: str | None
    location: Location
    arrival: datetime = Field(description="work starts on arrival")
    finish: datetime
    travel_km: float = Field(description="the leg driven to get here")
    travel_minutes: float
    sla_deadline: datetime
    late_minutes: float = Field(description="finish after the SLA deadline; 0 when on time")
    pinned: bool = Field(description="work in progress or en route: kept on this crew")

    @property
    def breach(self) -> bool:
        return self.late_minutes > 0


class CrewRoute(BaseModel):
    crew: str
    shift_start: datetime
    shift_end: datetime
    depart: datetime = Field(description="leaves its start position")
    back_at_base: datetime = Field(description="end of the last leg (home if it returns)")
    stops: list[Stop]
    travel_km: float = Field(description="all legs, including the way back")
    travel_minutes: float
    work_minutes: float


class UnassignedTicket(BaseModel):
    ticket: str
    reason: UnassignedReason
    detail: str
    sla_deadline: datetime
    predicted_breach: bool = Field(
        description="no planned shift ends before the deadline passes")


class SlaBreach(BaseModel):
    ticket: str
    priority: Priority
    crew: str | None = Field(description="None when left unassigned")
    sla_deadline: datetime
    predicted_finish: datetime | None
    late_minutes: float | None


class Plan(BaseModel):
    planned_at: datetime
    solver: Literal["ortools", "greedy"]
    routes: list[CrewRoute] = Field(description="one per crew shift, in crew and shift order")
    unassigned: list[UnassignedTicket]
    breaches: list[SlaBreach]
    weighted_breaches: int = Field(description="sum of the breached tickets' priority weights")
    total_travel_km: float
    total_travel_minutes: float
    solve_seconds: float

    @property
    def assigned_count(self) -> int:
        return sum(len(route.stops) for route in self.routes)

    def route_of(self, crew: str) -> list[str]:
        """Ticket ids in the order the crew works them, over all its shifts."""
        return [stop.ticket for route in self.routes if route.crew == crew
                for stop in route.stops]
