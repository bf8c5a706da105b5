"""Re-plan crews' routes and apply the plan; read a crew's route; crews report positions.

:func:`replan` reads the problem in one short session, plans with no transaction open
(OR-Tools runs for up to ``time_limit_s``), then applies the plan in a second session:
open and reopened tickets move to ``scheduled`` (a lifecycle move, audited, the crew is
notified); scheduled tickets that change crew move again; a new ETA or route position on the
same crew is an audited ``ticket.replan`` update. Tickets that changed while the planner
ran (a crew started one) are left as they are. One plan at a time per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.alerts.models import AlertRecord
from api.assets.models import Household
from api.audit import service as audit
from api.auth.models import Role
from api.auth.security import Principal
from api.crews.models import Crew
from api.db import utcnow
from api.errors import Conflict, NotFound
from api.planning import Plan, PlannerOptions, TravelModel, plan_routes
from api.scheduling.config import SchedulingConfig
from api.scheduling.problem import (
    PINNED,
    PLANNED_STATUSES,
    Snapshot,
    build_problem,
    local_zone,
    ticket_village,
)
from api.scheduling.schemas import Assignment, CrewRoute, Left, RouteStop, ScheduleResult
from api.tickets import service as tickets
from api.tickets.lifecycle import allowed_targets
from api.tickets.models import Ticket, TicketStatus
from api.tickets.schemas import TicketTransition

log = logging.getLogger(__name__)

_planning = threading.Lock()
#: statuses shown on a crew's route
ROUTE_STATUSES = (TicketStatus.IN_PROGRESS, TicketStatus.EN_ROUTE, TicketStatus.SCHEDULED)


def planner_options(config: SchedulingConfig) -> PlannerOptions:
    return PlannerOptions(time_limit_s=config.time_limit_s,
                          solution_limit=config.solution_limit)


def assignments_of(plan: Plan) -> dict[int, Assignment]:
    """Ticket id -> where the plan puts it (positions count over all of a crew's shifts)."""
    placed: dict[int, Assignment] = {}
    positions: dict[str, int] = {}
    for route in plan.routes:
        for stop in route.stops:
            position = positions.get(route.crew, 0)
            positions[route.crew] = position + 1
            placed[int(stop.ticket)] = Assignment(
                ticket_id=int(stop.ticket), crew_id=int(route.crew), route_position=position,
                eta=stop.arrival, finish=stop.finish, late_minutes=stop.late_minutes,
                pinned=stop.pinned)
    return placed


def replan(*, session_factory: sessionmaker[Session], config: SchedulingConfig,
           actor: Principal, now: datetime | None = None,
           travel: TravelModel | None = None) -> ScheduleResult:
    """Plan every active ticket on the active crews and apply the plan (blocking: call it
    from a worker thread). Raises :class:`Conflict` when there is no crew to plan for."""
    with _planning:
        moment = now or utcnow()
        with session_factory() as db_session:
            snapshot = build_problem(db_session=db_session, now=moment, config=config)
        if not snapshot.problem.crews:
            raise Conflict("no active crew with a skill to plan for")
        try:
            plan = plan_routes(snapshot.problem, options=planner_options(config), travel=travel)
        except ValueError as exc:
            raise Conflict(f"the planner refused the problem: {exc}") from exc
        with session_factory() as db_session:
            result = apply_plan(db_session=db_session, snapshot=snapshot, plan=plan,
                                actor=actor, eta_tolerance_minutes=config.eta_tolerance_minutes)
        log.info("re-planned %d tickets on %d crews: %d assigned, %d left, %d changed, "
                 "%d breaches, %.1f km in %.1f s", len(snapshot.problem.tickets),
                 len(snapshot.problem.crews), len(result.assignments), len(result.unassigned),
                 result.changed, result.breaches, result.total_travel_km, plan.solve_seconds)
        return result


def _reason(assignment: Assignment) -> str:
    return (f"planner: stop {assignment.route_position + 1} of crew {assignment.crew_id}, "
            f"ETA {assignment.eta:%Y-%m-%d %H:%M} UTC")


def _apply_one(db_session: Session, ticket: Ticket, assignment: Assignment,
               actor: Principal, tolerance: timedelta) -> bool:
    """Put ``ticket`` where the plan says; True when something changed."""
    if ticket.status in (TicketStatus.OPEN, TicketStatus.REOPENED) or (
            ticket.status is TicketStatus.SCHEDULED and ticket.crew_id != assignment.crew_id):
        tickets.transition(db_session=db_session, ticket=ticket, actor=actor, system=True,
                           commit=False, move_in=TicketTransition(
                               to=TicketStatus.SCHEDULED, reason=_reason(assignment),
                               crew_id=assignment.crew_id, scheduled_for=assignment.eta,
                               route_position=assignment.route_position))
        return True
    eta: datetime | None = assignment.eta
    if ticket.scheduled_for is not None and eta is not None \
            and abs(eta - ticket.scheduled_for) < tolerance:
        eta = ticket.scheduled_for  # the clock moved on, the route did not
    return _set_route(db_session, ticket, eta, assignment.route_position, actor,
                      _reason(assignment))


def _set_route(db_session: Session, ticket: Ticket, eta: datetime | None,
               position: int | None, actor: Principal, reason: str) -> bool:
    """A new ETA or route position without a lifecycle move (audited as ``ticket.replan``)."""
    changes: dict[str, Any] = {}
    if ticket.scheduled_for != eta:
        changes["scheduled_for"] = eta
    if ticket.route_position != position:
        changes["route_position"] = position
    if not changes:
        return False
    ticket.scheduled_for = eta
    ticket.route_position = position
    ticket.updated_at = utcnow()
    audit.record(db_session=db_session, actor=actor, action="ticket.replan",
                 entity_type="ticket", entity_id=ticket.id, reason=reason, changes=changes)
    return True


def apply_plan(*, db_session: Session, snapshot: Snapshot, plan: Plan, actor: Principal,
               eta_tolerance_minutes: float = 10.0) -> ScheduleResult:
    """Store ``plan`` on the tickets it was made from (one commit). An ETA that moved by
    less than ``eta_tolerance_minutes`` on the same crew and position is kept as it was."""
    tolerance = timedelta(minutes=eta_tolerance_minutes)
    placed = assignments_of(plan)
    rows = db_session.scalars(select(Ticket).where(Ticket.id.in_(list(snapshot.seen)))
                              .order_by(Ticket.id)).all()
    stale: list[int] = []
    changed = 0
    for ticket in rows:
        if (ticket.status, ticket.crew_id) != snapshot.seen[ticket.id] \
                or ticket.status not in PLANNED_STATUSES:
            stale.append(ticket.id)
            continue
        assignment = placed.get(ticket.id)
        if assignment is not None:
            changed += _apply_one(db_session, ticket, assignment, actor, tolerance)
        elif ticket.status is TicketStatus.SCHEDULED or ticket.status in PINNED:
            # left over: keeps its crew, loses its slot on the route
            changed += _set_route(db_session, ticket, None, None, actor,
                                  "planner: no room on the planned shifts")
    db_session.commit()
    unassigned = [Left(ticket_id=int(u.ticket), reason=u.reason, detail=u.detail)
                  for u in plan.unassigned]
    skipped = [Left(ticket_id=s.ticket_id, reason=s.reason, detail=s.detail)
               for s in snapshot.skipped]
    return ScheduleResult(
        planned_at=plan.planned_at, solver=plan.solver,
        assignments=sorted(placed.values(), key=lambda a: (a.crew_id, a.route_position)),
        unassigned=unassigned, skipped=skipped, stale=stale, changed=changed,
        breaches=len(plan.breaches), weighted_breaches=plan.weighted_breaches,
        total_travel_km=round(plan.total_travel_km, 2), solve_seconds=plan.solve_seconds)


def fingerprint(db_session: Session) -> tuple[Any, ...]:
    """What the plan depends on, cheaply: active tickets (count, last change) and the crews'
    settings and reported positions. A change means it is time to re-plan."""
    count, last_change = db_session.execute(
        select(func.count(Ticket.id), func.max(Ticket.updated_at))
        .where(Ticket.status.in_(list(PLANNED_STATUSES)))).one()
    crews = db_session.execute(
        select(Crew.id, Crew.active, Crew.skills, Crew.zones, Crew.work_start, Crew.work_end,
               Crew.home_latitude, Crew.home_longitude, Crew.reported_at)
        .order_by(Crew.id)).all()
    return (count, last_change, tuple(tuple(str(value) for value in row) for row in crews))


# ---------------------------------------------------------------- a crew's route


def _visible_crew(db_session: Session, crew_id: int, viewer: Principal) -> Crew:
    crew = db_session.get(Crew, crew_id)
    if crew is None or (viewer.role is Role.CREW_MEMBER and viewer.crew_id != crew_id):
        raise NotFound(f"no crew {crew_id}")
    return crew


def _route_order(ticket: Ticket) -> tuple[int, int, float, int]:
    started = {TicketStatus.IN_PROGRESS: 0, TicketStatus.EN_ROUTE: 1}.get(ticket.status, 2)
    eta = ticket.scheduled_for.timestamp() if ticket.scheduled_for else float("inf")
    position = ticket.route_position if ticket.route_position is not None else 10**6
    return (started, 0 if ticket.scheduled_for else 1, eta, position)


def route_stop(db_session: Session, ticket: Ticket, config: SchedulingConfig) -> RouteStop:
    """A ticket as a stop: place, ETA in local time, contact and evidence."""
    village = ticket_village(db_session, ticket)
    household = db_session.get(Household, ticket.household_id) if ticket.household_id else None
    alert = db_session.scalar(select(AlertRecord).where(AlertRecord.key == ticket.alert_key)) \
        if ticket.alert_key else None
    zone = local_zone(config.utc_offset_hours)
    eta = ticket.scheduled_for
    contact_name = (household.contact_name if household else "") or ticket.reporter_name
    contact_phone = (household.contact_phone if household else "") or ticket.reporter_phone
    return RouteStop(
        ticket_id=ticket.id, title=ticket.title, type=ticket.type, priority=ticket.priority,
        status=ticket.status, route_position=ticket.route_position, eta=eta,
        eta_local=eta.astimezone(zone).strftime("%H:%M") if eta else None,
        day=eta.astimezone(zone).date() if eta else None, due_at=ticket.due_at,
        overdue_at_eta=eta is not None and eta > ticket.due_at,
        village_id=village.id if village else ticket.village_id,
        village_name=village.name if village else None,
        township_id=village.township_id if village else None,
        latitude=village.latitude if village else None,
        longitude=village.longitude if village else None,
        dma_id=ticket.dma_id, household_id=ticket.household_id, device_id=ticket.device_id,
        contact_name=contact_name, contact_phone=contact_phone,
        monitored_household=bool(household and household.monitored),
        evidence=dict(alert.evidence) if alert else {}, description=ticket.description,
        allowed_next=allowed_targets(ticket.status))


def crew_tickets(db_session: Session, crew_id: int) -> Iterable[Ticket]:
    rows = db_session.scalars(select(Ticket).where(Ticket.crew_id == crew_id,
                                                   Ticket.status.in_(ROUTE_STATUSES))).all()
    return sorted(rows, key=_route_order)


def crew_route(*, db_session: Session, crew_id: int, viewer: Principal,
               config: SchedulingConfig, now: datetime | None = None) -> CrewRoute:
    """The crew's work: in progress, en route, then scheduled by ETA (unplanned last).
    A crew member may read only their own crew's route (another crew's is a 404)."""
    crew = _visible_crew(db_session, crew_id, viewer)
    moment = now or utcnow()
    return CrewRoute(crew_id=crew.id, crew_name=crew.name,
                     today=moment.astimezone(local_zone(config.utc_offset_hours)).date(),
                     stops=[route_stop(db_session, ticket, config)
                            for ticket in crew_tickets(db_session, crew.id)])


def report_position(*, db_session: Session, crew_id: int, latitude: float, longitude: float,
                    actor: Principal, now: datetime | None = None) -> Crew:
    """A crew says where it is (its phone, or arriving at a job); the next plan starts there.
    Admins, dispatchers and the crew's own members may report."""
    crew = _visible_crew(db_session, crew_id, actor)
    crew.reported_latitude = latitude
    crew.reported_longitude = longitude
    crew.reported_at = now or utcnow()
    audit.record(db_session=db_session, actor=actor, action="crew.position",
                 entity_type="crew", entity_id=crew.id,
                 changes={"latitude": latitude, "longitude": longitude})
    db_session.commit()
    return crew
