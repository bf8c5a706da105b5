"""Bodies of the scheduling endpoints: a re-plan's result, a crew's route, a position report."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.tickets.models import Priority, TicketStatus, TicketType


class Assignment(BaseModel):
    ticket_id: int
    crew_id: int
    route_position: int = Field(description="0 first, over the crew's planned shifts")
    eta: datetime = Field(description="planned arrival (work starts on arrival), UTC")
    finish: datetime
    late_minutes: float = Field(description="predicted finish after the SLA deadline, min")
    pinned: bool = Field(description="en route or in progress: kept on its crew")


class Left(BaseModel):
    """A ticket the plan does not place, and why (planner reason or ``no_location`` ...)."""

    ticket_id: int
    reason: str
    detail: str


class ScheduleResult(BaseModel):
    planned_at: datetime
    solver: str = Field(description="ortools, or greedy when the search found nothing")
    assignments: list[Assignment]
    unassigned: list[Left] = Field(description="left over by the planner")
    skipped: list[Left] = Field(description="not plannable (no location, unknown skill...)")
    stale: list[int] = Field(
        default_factory=list, description="changed while planning: left as they were")
    changed: int = Field(description="tickets whose crew, position or ETA changed")
    breaches: int
    weighted_breaches: int
    total_travel_km: float
    solve_seconds: float


class RouteStop(BaseModel):
    """One job on a crew's route, with what the crew needs on site."""

    ticket_id: int
    title: str
    type: TicketType
    priority: Priority
    status: TicketStatus
    route_position: int | None
    eta: datetime | None = Field(description="planned arrival, UTC; None: not planned yet")
    eta_local: str | None = Field(description="planned arrival, county local time HH:MM")
    day: date | None = Field(description="local day of the planned arrival")
    due_at: datetime
    overdue_at_eta: bool = Field(description="the planned arrival is past the SLA due time")
    village_id: str | None
    village_name: str | None
    township_id: str | None
    latitude: float | None
    longitude: float | None
    dma_id: str | None
    household_id: str | None
    device_id: str | None
    contact_name: str = Field(description="the household's or the reporter's name")
    contact_phone: str
    monitored_household: bool = Field(description="on the social monitoring list")
    evidence: dict[str, Any] = Field(description="the alert's evidence numbers")
    description: str
    allowed_next: list[TicketStatus]


class CrewRoute(BaseModel):
    crew_id: int
    crew_name: str
    today: date = Field(description="county local date")
    stops: list[RouteStop] = Field(description="work in progress, en route, then by ETA")


class PositionReport(BaseModel):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
