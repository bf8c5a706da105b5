"""Build the planner's problem from the database: active tickets and active crews.

Tickets: open, reopened and scheduled ones are planned freely; en route and in progress ones
are pinned to their crew. A ticket is placed at its village (or the village of its DMA,
household or device); its township is matched against crew zones. Crews: skills, home base,
zones, the last reported position while fresh, and today's and the next days' shifts built
from their working hours in county local time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.assets.models import Device, Dma, Household, Village
from api.crews.models import Crew
from api.planning import (
    Location,
    PlanningCrew,
    PlanningProblem,
    PlanningTicket,
    Priority,
    Shift,
    Skill,
)
from api.planning import TicketStatus as PlanStatus
from api.scheduling.config import SchedulingConfig
from api.tickets.models import Ticket, TicketStatus

#: Ticket statuses the planner sees, and what each is to the planner.
PLANNED_STATUSES: dict[TicketStatus, PlanStatus] = {
    TicketStatus.OPEN: PlanStatus.OPEN,
    TicketStatus.REOPENED: PlanStatus.OPEN,
    TicketStatus.SCHEDULED: PlanStatus.SCHEDULED,
    TicketStatus.EN_ROUTE: PlanStatus.EN_ROUTE,
    TicketStatus.IN_PROGRESS: PlanStatus.IN_PROGRESS,
}
PINNED = frozenset({TicketStatus.EN_ROUTE, TicketStatus.IN_PROGRESS})
_SKILLS = frozenset(skill.value for skill in Skill)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A ticket left out of the problem, and why."""

    ticket_id: int
    reason: str
    detail: str


@dataclass
class Snapshot:
    """The problem plus what it was built from (to apply the plan against the same state)."""

    problem: PlanningProblem
    #: ticket id -> (status, crew id) when the problem was built
    seen: dict[int, tuple[TicketStatus, int | None]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


def local_zone(utc_offset_hours: float) -> timezone:
    return timezone(timedelta(hours=utc_offset_hours))


def crew_shifts(crew: Crew, now: datetime, config: SchedulingConfig) -> list[Shift]:
    """The crew's working hours on today's and the next local days that end after ``now``."""
    zone = local_zone(config.utc_offset_hours)
    today = now.astimezone(zone).date()
    shifts = []
    for offset in range(config.horizon_days):
        day: date = today + timedelta(days=offset)
        start = datetime.combine(day, crew.work_start, tzinfo=zone)
        end = datetime.combine(day, crew.work_end, tzinfo=zone)
        if end > now:
            shifts.append(Shift(start=start, end=end))
    return shifts


def crew_position(crew: Crew, now: datetime, config: SchedulingConfig) -> Location | None:
    """The last reported position, if reported within ``position_max_age_h``."""
    if crew.reported_at is None or crew.reported_latitude is None \
            or crew.reported_longitude is None:
        return None
    if now - crew.reported_at > timedelta(hours=config.position_max_age_h):
        return None
    return Location(latitude=crew.reported_latitude, longitude=crew.reported_longitude)


def planning_crew(crew: Crew, now: datetime, config: SchedulingConfig) -> PlanningCrew | None:
    """The crew as the planner sees it; None when it has no usable skill."""
    skills = frozenset(Skill(value) for value in crew.skills if value in _SKILLS)
    if not skills:
        return None
    return PlanningCrew(
        id=str(crew.id), skills=skills,
        home=Location(latitude=crew.home_latitude, longitude=crew.home_longitude),
        shifts=crew_shifts(crew, now, config), zones=frozenset(crew.zones),
        position=crew_position(crew, now, config))


def ticket_village(db_session: Session, ticket: Ticket) -> Village | None:
    """Where the crew goes: the ticket's village, else its DMA's, household's or device's."""
    village_id = ticket.village_id
    if village_id is None and ticket.dma_id:
        dma = db_session.get(Dma, ticket.dma_id)
        village_id = dma.village_id if dma else None
    if village_id is None and ticket.household_id:
        household = db_session.get(Household, ticket.household_id)
        village_id = household.village_id if household else None
    if village_id is None and ticket.device_id:
        device = db_session.get(Device, ticket.device_id)
        village_id = device.village_id if device else None
    return db_session.get(Village, village_id) if village_id else None


def service_minutes(ticket: Ticket, now: datetime, config: SchedulingConfig) -> float:
    """Estimated work on site, minutes; for work in progress, what is left of it."""
    estimate = config.service_minutes.get(ticket.type, 60.0)
    if ticket.status is TicketStatus.IN_PROGRESS and ticket.started_at is not None:
        spent = (now - ticket.started_at).total_seconds() / 60
        return max(config.min_remaining_minutes, estimate - spent)
    return estimate


def planning_ticket(db_session: Session, ticket: Ticket, now: datetime,
                    config: SchedulingConfig, crew_ids: set[int]) -> PlanningTicket | Skipped:
    """The ticket as the planner sees it, or why it cannot be planned."""
    if ticket.required_skill not in _SKILLS:
        return Skipped(ticket.id, "unknown_skill", f"no crew skill {ticket.required_skill!r}")
    if ticket.status in PINNED and ticket.crew_id not in crew_ids:
        return Skipped(ticket.id, "crew_inactive",
                       f"{ticket.status.value} with crew {ticket.crew_id}, not an active crew")
    village = ticket_village(db_session, ticket)
    if village is None:
        return Skipped(ticket.id, "no_location", "no village (nor DMA, household or device "
                                                 "in the asset register) to go to")
    pinned = ticket.status in PINNED
    return PlanningTicket(
        id=str(ticket.id),
        location=Location(latitude=village.latitude, longitude=village.longitude,
                          key=village.id),
        village=village.id, township=village.township_id,
        priority=Priority(ticket.priority.value), skill=Skill(ticket.required_skill),
        sla_deadline=ticket.due_at, service_minutes=service_minutes(ticket, now, config),
        status=PLANNED_STATUSES[ticket.status],
        crew=str(ticket.crew_id) if pinned else None)


def active_crews(db_session: Session) -> Sequence[Crew]:
    return db_session.scalars(select(Crew).where(Crew.active.is_(True)).order_by(Crew.id)).all()


def plannable_tickets(db_session: Session) -> Sequence[Ticket]:
    return db_session.scalars(select(Ticket).where(Ticket.status.in_(list(PLANNED_STATUSES)))
                              .order_by(Ticket.id)).all()


def build_problem(*, db_session: Session, now: datetime, config: SchedulingConfig) -> Snapshot:
    """The planning problem of every active ticket and crew as of ``now``."""
    crews = [c for c in (planning_crew(crew, now, config) for crew in active_crews(db_session))
             if c is not None]
    crew_ids = {int(crew.id) for crew in crews}
    snapshot = Snapshot(problem=PlanningProblem(now=now, tickets=[], crews=crews))
    for ticket in plannable_tickets(db_session):
        entry = planning_ticket(db_session, ticket, now, config, crew_ids)
        if isinstance(entry, Skipped):
            snapshot.skipped.append(entry)
            continue
        snapshot.problem.tickets.append(entry)
        snapshot.seen[ticket.id] = (ticket.status, ticket.crew_id)
    return snapshot
