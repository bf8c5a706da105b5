"""Ticket service functions: create (by hand or from an alert), read with crew scoping,
update, and the checked lifecycle move. Every write is audited in the same transaction."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from api.alerts.models import AlertRecord
from api.assets.models import Village
from api.audit import service as audit
from api.auth.models import Role
from api.auth.security import Principal
from api.crews.models import Crew
from api.db import utcnow, where_equal
from api.errors import Forbidden, Invalid, InvalidTransition, NotFound
from api.tickets import changes
from api.tickets.cache import ListingCache
from api.tickets.lifecycle import MOVES, allowed_targets
from api.tickets.models import (
    ACTIVE_STATUSES,
    Priority,
    Ticket,
    TicketSource,
    TicketStatus,
)
from api.tickets.notices import ticket_changed
from api.tickets.rules import TicketRule, adjusted_priority, due_at, problem_key
from api.tickets.schemas import TicketCreate, TicketRead, TicketTransition, TicketUpdate
from common.alerts import Alert, AlertKind, AlertStatus
from common.settings import ApiSettings

#: The moves open from each status (the lifecycle table does not change at run time).
_ALLOWED_NEXT: dict[TicketStatus, tuple[TicketStatus, ...]] = {
    status: tuple(allowed_targets(status)) for status in TicketStatus}
#: Validates a page of tickets in one call into pydantic-core (not one call per ticket).
_TICKET_PAGE = TypeAdapter(list[TicketRead])
#: The ticket columns a TicketRead shows (``allowed_next`` is derived from the status).
_READ_COLUMNS = tuple(Ticket.__table__.c[name] for name in TicketRead.model_fields
                      if name != "allowed_next")


def to_read(ticket: Ticket) -> TicketRead:
    read = TicketRead.model_validate(ticket)
    read.allowed_next = list(_ALLOWED_NEXT[ticket.status])
    return read


def _crew_scope(viewer: Principal) -> ColumnElement[bool] | None:
    """What a crew member may see: their crew's tickets (nothing without a crew)."""
    if viewer.role is not Role.CREW_MEMBER:
        return None
    return Ticket.crew_id == viewer.crew_id if viewer.crew_id is not None else false()


def _visible(query: Select[Ticket], viewer: Principal) -> Select[Ticket]:
    scope = _crew_scope(viewer)
    return query if scope is None else query.where(scope)


def get(*, db_session: Session, ticket_id: int, viewer: Principal) -> Ticket:
    """The ticket, if ``viewer`` may see it (a crew member: only their crew's); else 404."""
    ticket = db_session.scalar(_visible(select(Ticket).where(Ticket.id == ticket_id), viewer))
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    return ticket


def get_all(
    *,
    db_session: Session,
    viewer: Principal,
    statuses: Sequence[TicketStatus] = (),
    crew_id: int | None = None,
    village_id: str | None = None,
    priority: Priority | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[TicketRead]:
    """Tickets by due time (soonest first), filtered and scoped to what ``viewer`` may see
    (a crew member: only their crew's).

    A list page is read-only, so it reads plain columns (no ORM objects to build and track)
    and validates the page in one pass: a page of 100 costs a fraction of loading entities
    and validating them one by one.
    """
    query = select(*_READ_COLUMNS)
    scope = _crew_scope(viewer)
    if scope is not None:
        query = query.where(scope)
    if statuses:
        query = query.where(Ticket.status.in_(list(statuses)))
    query = where_equal(query, (Ticket.crew_id, crew_id), (Ticket.village_id, village_id),
                        (Ticket.priority, priority))
    query = query.order_by(Ticket.due_at, Ticket.id).limit(limit).offset(offset)
    rows = db_session.execute(query).mappings().all()
    return _TICKET_PAGE.validate_python(
        [{**row, "allowed_next": _ALLOWED_NEXT[row["status"]]} for row in rows])


@dataclass(frozen=True, slots=True)
class PageQuery:
    """The filters and window of a ticket list page."""

    statuses: tuple[TicketStatus, ...] = ()
    crew_id: int | None = None
    village_id: str | None = None
    priority: Priority | None = None
    limit: int = 100
    offset: int = 0

    def cache_key(self, viewer: Principal) -> Hashable:
        """The page for this viewer's scope: everyone but a crew member sees the same."""
        scope = ("crew", viewer.crew_id) if viewer.role is Role.CREW_MEMBER else ("all",)
        return (scope, tuple(sorted(set(self.statuses))), self.crew_id, self.village_id,
                self.priority, self.limit, self.offset)


def get_page_json(*, db_session: Session, cache: ListingCache, viewer: Principal,
                  query: PageQuery, version: int | None = None,
                  version_known: bool = False) -> bytes:
    """:func:`get_all` as the JSON the API answers, from ``cache`` while no ticket changed.

    The ticket table's version is read first (or given, ``version_known``): a page stored
    under it can only be newer. Without a version (no ticket written yet) nothing is cached.
    """
    key = query.cache_key(viewer)
    if not version_known:
        version = changes.current_version(db_session)
    if version is not None:
        cached = cache.get(key, version)
        if cached is not None:
            return cached
    page = get_all(db_session=db_session, viewer=viewer, statuses=query.statuses,
                   crew_id=query.crew_id, village_id=query.village_id,
                   priority=query.priority, limit=query.limit, offset=query.offset)
    body = _TICKET_PAGE.dump_json(page)
    if version is not None:
        cache.put(key, version, body)
    return body


def _require_village(db_session: Session, village_id: str) -> None:
    if db_session.get(Village, village_id) is None:
        raise Invalid(f"no village {village_id!r} in the asset register")


def create(*, db_session: Session, ticket_in: TicketCreate, actor: Principal,
           settings: ApiSettings) -> Ticket:
    """A ticket opened by hand (hotline complaint or dispatcher)."""
    _require_village(db_session, ticket_in.village_id)
    now = utcnow()
    ticket = Ticket(
        **ticket_in.model_dump(),
        status=TicketStatus.OPEN,
        created_at=now,
        updated_at=now,
        due_at=due_at(now, ticket_in.sla_class, settings),
    )
    db_session.add(ticket)
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, action="ticket.create",
                 entity_type="ticket", entity_id=ticket.id,
                 changes={"source": ticket.source.value, "type": ticket.type.value,
                          "priority": ticket.priority.value, "village": ticket.village_id})
    ticket_changed(db_session=db_session, ticket=ticket)
    db_session.commit()
    return ticket


def update(*, db_session: Session, ticket: Ticket, ticket_in: TicketUpdate, actor: Principal,
           settings: ApiSettings) -> Ticket:
    changes: dict[str, Any] = ticket_in.model_dump(exclude_unset=True, exclude={"reason"})
    for name, value in changes.items():
        setattr(ticket, name, value)
    if ticket_in.sla_class is not None:
        ticket.due_at = due_at(ticket.created_at, ticket_in.sla_class, settings)
        changes["due_at"] = ticket.due_at
    ticket.updated_at = utcnow()
    audit.record(db_session=db_session, actor=actor, action="ticket.update",
                 entity_type="ticket", entity_id=ticket.id, reason=ticket_in.reason,
                 changes=changes)
    db_session.commit()
    return ticket


def _authorise_move(ticket: Ticket, move_in: TicketTransition, actor: Principal,
                    system: bool) -> None:
    move = MOVES.get(move_in.to)
    if move is None:
        raise InvalidTransition(f"a ticket cannot be moved back to {move_in.to.value}")
    if system:
        if not move.system:
            raise Forbidden(f"the service does not move tickets to {move_in.to.value}")
        return
    if actor.role is None or actor.role not in move.roles:
        roles = ", ".join(sorted(r.value for r in move.roles))
        raise Forbidden(f"role {actor.role_name} may not move a ticket to {move_in.to.value} "
                        f"(needs one of: {roles})")
    if actor.role is Role.CREW_MEMBER and ticket.crew_id != actor.crew_id:
        raise NotFound(f"no ticket {ticket.id}")


def _check_source(ticket: Ticket, target: TicketStatus) -> None:
    if ticket.status not in MOVES[target].sources:
        allowed = ", ".join(s.value for s in allowed_targets(ticket.status)) or "none"
        raise InvalidTransition(
            f"ticket {ticket.id} is {ticket.status.value}: it cannot go to {target.value} "
            f"(allowed next: {allowed})")


def _assign_crew(db_session: Session, ticket: Ticket, move_in: TicketTransition) -> None:
    crew_id = move_in.crew_id if move_in.crew_id is not None else ticket.crew_id
    if crew_id is None:
        raise Invalid("scheduling a ticket needs a crew_id")
    crew = db_session.get(Crew, crew_id)
    if crew is None or not crew.active:
        raise Invalid(f"no active crew {crew_id}")
    if ticket.required_skill not in crew.skills:
        raise Invalid(f"crew {crew.name!r} lacks the skill {ticket.required_skill!r} "
                      f"(has: {', '.join(crew.skills) or 'none'})")
    ticket.crew_id = crew.id
    ticket.scheduled_for = move_in.scheduled_for
    ticket.route_position = move_in.route_position


def _apply(db_session: Session, ticket: Ticket, move_in: TicketTransition,
           now: datetime) -> None:
    target = move_in.to
    if target is TicketStatus.SCHEDULED:
        _assign_crew(db_session, ticket, move_in)
    elif target is TicketStatus.IN_PROGRESS:
        ticket.started_at = now
    elif target is TicketStatus.RESOLVED:
        if not move_in.note.strip():
            raise Invalid("resolving a ticket needs a note saying what was done")
        ticket.resolved_at = now
        ticket.resolution_note = move_in.note
    elif target is TicketStatus.VERIFIED:
        ticket.verified_at = now
        ticket.closed_at = now
    elif target is TicketStatus.REOPENED:
        ticket.reopen_count += 1
        ticket.closed_at = None
        ticket.verified_at = None
        ticket.route_position = None
    elif target is TicketStatus.CANCELLED:
        ticket.closed_at = now


def transition(
    *,
    db_session: Session,
    ticket: Ticket,
    move_in: TicketTransition,
    actor: Principal,
    system: bool = False,
    now: datetime | None = None,
    commit: bool = True,
) -> Ticket:
    """Move ``ticket`` one step along its lifecycle, checked and audited.

    Raises :class:`Forbidden` (wrong role), :class:`InvalidTransition` (not a move from the
    current status) or :class:`Invalid` (missing crew, note or reason). ``system`` marks a
    move made by the service itself (verification, alert intake, planner).
    """
    _authorise_move(ticket, move_in, actor, system)
    _check_source(ticket, move_in.to)
    if MOVES[move_in.to].reason_required and not system and not move_in.reason.strip():
        raise Invalid(f"moving a ticket to {move_in.to.value} by hand needs a reason")
    moment = now or utcnow()
    previous = ticket.status
    _apply(db_session, ticket, move_in, moment)
    ticket.status = move_in.to
    ticket.updated_at = moment
    changes: dict[str, Any] = {"from": previous.value, "to": move_in.to.value}
    if move_in.to is TicketStatus.SCHEDULED:
        changes["crew_id"] = ticket.crew_id
    if move_in.note:
        changes["note"] = move_in.note
    audit.record(db_session=db_session, actor=actor, action="ticket.transition",
                 entity_type="ticket", entity_id=ticket.id, reason=move_in.reason,
                 changes=changes)
    ticket_changed(db_session=db_session, ticket=ticket)
    if commit:
        db_session.commit()
    return ticket


def current_for_problem(*, db_session: Session, problem: str) -> Ticket | None:
    """The problem's current (not closed) ticket: at most one (a partial unique index)."""
    return db_session.scalar(select(Ticket).where(Ticket.problem_key == problem,
                                                  Ticket.closed_at.is_(None)))


def _recently_verified(db_session: Session, problem: str, now: datetime,
                       settings: ApiSettings) -> Ticket | None:
    """The problem's ticket verified within ``reopen_within_days`` of ``now``, if any."""
    since = now - timedelta(days=settings.reopen_within_days)
    return db_session.scalar(
        select(Ticket).where(Ticket.problem_key == problem,
                             Ticket.status == TicketStatus.VERIFIED,
                             Ticket.verified_at >= since)
        .order_by(Ticket.verified_at.desc()).limit(1))


def sync_with_alert(
    *,
    db_session: Session,
    alert: AlertRecord,
    contract: Alert,
    rules: Mapping[AlertKind, TicketRule],
    actor: Principal,
    settings: ApiSettings,
    linked: Ticket | None,
    opening: bool,
) -> Ticket | None:
    """Keep the one ticket of this alert's problem in step with the alert (no commit).

    ``linked`` is the ticket the alert joined before (``alerts.ticket_id``); ``opening`` says
    the alert has just (re)opened: it is new, or raised again after it resolved.

    - The problem's current ticket (open ... resolved, or reopened) takes the alert: it
      joins the ticket's ``alert_keys``, and may raise its priority, bring its due time
      forward and change its type (below), each audited.
    - Without a current ticket, an opening alert reopens the problem's ticket verified
      within ``reopen_within_days`` (the repair did not hold), else opens a new ticket (a
      new problem at the same place, or one whose ticket was cancelled).
    - A resolved alert changes no ticket (the telemetry verification judges the repair);
      neither does new evidence on an open alert whose ticket is closed.
    """
    rule = rules.get(alert.kind)
    if rule is None or not rule.create or alert.status is not AlertStatus.OPEN:
        return linked
    linked = _latest(db_session, linked)
    problem = problem_key(rule, contract)
    now = utcnow()
    priority = adjusted_priority(rule, alert.severity, alert.monitored)
    current = linked if linked is not None and linked.closed_at is None and \
        linked.problem_key == problem else current_for_problem(db_session=db_session,
                                                                 problem=problem)
    if current is None and linked is not None and not opening:
        return linked
    if current is None:
        current = _recently_verified(db_session, problem, now, settings)
        if current is None:
            return _ticket_from_alert(db_session, alert, rule, problem, priority, actor,
                                      settings)
        transition(db_session=db_session, ticket=current, actor=actor, system=True,
                   commit=False, now=now, move_in=TicketTransition(
                       to=TicketStatus.REOPENED,
                       reason=f"alert {alert.key}: the problem came back within "
                              f"{settings.reopen_within_days:g} days of verification"))
    return _join(db_session, current, alert, rule, rules, priority, actor, settings, now)


#: The columns :func:`sync_with_alert` reads of an alert's ticket that the alert does not
#: change: a caller handing it many tickets (alert intake's batch) may read just these and
#: give them as :func:`known_ticket`.
SYNC_COLUMNS = ("id", "problem_key", "closed_at", "alert_keys", "status", "priority",
                "due_at", "type", "alert_key")

_new_ticket = cast(Callable[[], Ticket], sa_inspect(Ticket).class_manager.new_instance)
_identity_of = sa_inspect(Ticket).identity_key_from_primary_key


def known_ticket(values: Mapping[str, Any]) -> Ticket:
    """A stored ticket known by some of its columns (``SYNC_COLUMNS`` at least, the id among
    them) and kept out of any session: SQLAlchemy sees a new object that nobody has added
    (its values set as the ORM's loader sets them), which costs a few microseconds where
    loading it into the session costs tens. :func:`sync_with_alert` reads it as it is and
    turns it into the stored ticket it is, in its session, only to change it."""
    ticket = _new_ticket()
    ticket.__dict__.update(values)
    return ticket


def _is_known(ticket: Ticket) -> bool:
    """Made by :func:`known_ticket` and not yet attached."""
    return sa_inspect(ticket).transient and ticket.__dict__.get("id") is not None


def _latest(db_session: Session, ticket: Ticket | None) -> Ticket | None:
    """``ticket``, or the session's own copy of it when the session has one (a ticket known
    outside the session may since have been loaded and changed in it)."""
    if ticket is None or not _is_known(ticket):
        return ticket
    in_session = db_session.identity_map.get(_identity_of((ticket.id,)))
    return cast(Ticket, in_session) if in_session is not None else ticket


def _attach(db_session: Session, ticket: Ticket) -> None:
    """A known ticket joins ``db_session`` as the stored ticket it is (no SQL: the columns it
    was not known by are expired, loaded when first read); its changes from now on are
    flushed as any loaded ticket's."""
    if _is_known(ticket):
        make_transient_to_detached(ticket)
        db_session.add(ticket)


def _lead_rule(ticket: Ticket, rules: Mapping[AlertKind, TicketRule]) -> TicketRule | None:
    if ticket.alert_key is None:
        return None
    try:
        return rules.get(AlertKind(ticket.alert_key.split(":", 1)[0]))
    except ValueError:
        return None


def _join(db_session: Session, ticket: Ticket, alert: AlertRecord, rule: TicketRule,
          rules: Mapping[AlertKind, TicketRule], priority: Priority, actor: Principal,
          settings: ApiSettings, now: datetime) -> Ticket:
    """``alert`` joins ``ticket``; while the ticket still needs a crew, the alert may:

    - raise its priority (the highest of its alerts');
    - bring its due time forward (the sooner of its due time and the new alert's SLA);
    - change its type, skill and lead alert, when the new alert's rule outranks (by base
      priority) the rule of the alert that made the ticket what it is: a ``water_balance``
      leak survey becomes a leak repair when a ``night_flow`` or ``burst`` alert joins.
    """
    changes: dict[str, Any] = {}
    if alert.key not in ticket.alert_keys:
        changes["alert_keys"] = [*ticket.alert_keys, alert.key]
    if ticket.status in ACTIVE_STATUSES:
        changes.update(_escalation(ticket, alert, rule, rules, priority, settings, now))
    if not changes:
        return ticket  # as it came: a ticket known outside the session stays out of it
    _attach(db_session, ticket)
    title = changes.pop("title", None)  # follows the type: not audited on its own
    for name, value in changes.items():
        setattr(ticket, name, value)
    if title is not None:
        ticket.title = title
    ticket.updated_at = now
    escalated = set(changes) - {"alert_keys"}
    reason = f"alert {alert.key} joined the ticket" if "alert_keys" in changes \
        else f"alert {alert.key}: new evidence"
    audit.record(db_session=db_session, actor=actor, action="ticket.update",
                 entity_type="ticket", entity_id=ticket.id, reason=reason,
                 changes=changes)
    if escalated:
        ticket_changed(db_session=db_session, ticket=ticket)
    return ticket


def _escalation(ticket: Ticket, alert: AlertRecord, rule: TicketRule,
                rules: Mapping[AlertKind, TicketRule], priority: Priority,
                settings: ApiSettings, now: datetime) -> dict[str, Any]:
    """The columns ``alert`` raises on ``ticket`` (set by the caller)."""
    changes: dict[str, Any] = {}
    if priority.rank > ticket.priority.rank:
        changes["priority"] = priority
    due = due_at(now, rule.sla_class, settings)
    if due < ticket.due_at:
        changes["due_at"] = due
        changes["sla_class"] = rule.sla_class
    lead = _lead_rule(ticket, rules)
    if rule.ticket_type is not ticket.type and lead is not None and \
            rule.priority.rank > lead.priority.rank:
        changes["type"] = rule.ticket_type
        changes["required_skill"] = rule.skill.value
        changes["alert_key"] = alert.key
        changes["title"] = alert.title
    return changes


def _ticket_from_alert(db_session: Session, alert: AlertRecord, rule: TicketRule,
                       problem: str, priority: Priority, actor: Principal,
                       settings: ApiSettings) -> Ticket:
    village = alert.village if alert.village and db_session.get(Village, alert.village) else None
    now = utcnow()
    ticket = Ticket(
        alert_key=alert.key,
        problem_key=problem,
        alert_keys=[alert.key],
        source=TicketSource.ALERT,
        type=rule.ticket_type,
        title=alert.title,
        description=_describe(alert),
        priority=priority,
        required_skill=rule.skill.value,
        sla_class=rule.sla_class,
        status=TicketStatus.OPEN,
        village_id=village,
        dma_id=alert.dma,
        device_id=alert.device,
        household_id=alert.household,
        created_at=now,
        updated_at=now,
        due_at=due_at(now, rule.sla_class, settings),
    )
    db_session.add(ticket)
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, action="ticket.create",
                 entity_type="ticket", entity_id=ticket.id, reason=f"alert {alert.key}",
                 changes={"source": "alert", "type": ticket.type.value, "problem": problem,
                          "priority": priority.value, "sla_class": rule.sla_class.value})
    ticket_changed(db_session=db_session, ticket=ticket)
    return ticket


def _describe(alert: AlertRecord) -> str:
    evidence = ", ".join(f"{name}={value}" for name, value in sorted(alert.evidence.items()))
    kind = AlertKind(alert.kind).value
    where = alert.household or alert.device or alert.dma or alert.village or "county"
    return f"{kind} at {where} since {alert.started_at.isoformat()}; {evidence}".strip("; ")
