"""The ticket database the tickets board reads, filled by the ticket service's own functions.

:func:`ticket_database` makes a throw-away schema with the API's tables
(``api.models.Base.metadata``) on a PostgreSQL server (a schema, not a database: dropping a
database forces a checkpoint that can take many seconds). :func:`replay_tickets` replays a
:class:`dashboards.sample.Sample`'s analysis passes through the ticket service, in pass
order, as the running service would have seen them:

- the asset register is imported (``api.assets.service.import_county``) and three crews are
  created (``api.crews.service.create``);
- each pass's alert changes go through alert intake (``api.alerts.service.intake``: alert
  records, one ticket per problem by the default ticket rules) and the emergency plans
  (``api.emergency.service.apply_alert``), as ``PUT /api/v1/alerts/{key}`` does;
- the planner (``api.scheduling.service.replan``) schedules open tickets onto the crews at
  each pass;
- a crew starts a scheduled ticket at its planned arrival (``in_progress``) and resolves it
  once the planner's service time for its type is over and the analysis has resolved the
  ticket's alerts: a repair the data does not confirm stays in progress and runs past its
  deadline.
  (Telemetry verification, ``api.tickets.verification``, is not replayed.)

Intake stamps tickets with the wall clock; the replay puts a ticket an alert opened or joined
on the pass's clock (``created_at``, ``updated_at``, and ``due_at`` by the service's SLA
rule: a joining alert may only bring it forward), so ticket ages and deadlines match the
simulated days. Lifecycle moves and plans take the pass time.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import psycopg
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.alerts import service as alert_intake
from api.alerts.models import AlertRecord
from api.assets import service as assets
from api.auth.models import Role, ServiceKind
from api.auth.security import SYSTEM, Principal
from api.crews import service as crews
from api.crews.models import Crew, Skill
from api.crews.schemas import CrewCreate
from api.emergency import service as emergency
from api.emergency.plans import default_plan
from api.errors import Conflict
from api.models import Base
from api.scheduling import service as scheduling
from api.scheduling.config import SchedulingConfig
from api.tickets import service as tickets
from api.tickets.models import ACTIVE_STATUSES, Ticket, TicketStatus
from api.tickets.rules import DEFAULT_RULES, due_at
from api.tickets.schemas import TicketTransition
from common.alerts import Alert, AlertStatus
from common.settings import ApiSettings
from dashboards.sample import Sample

log = logging.getLogger(__name__)

POSTGRES_ADMIN: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
ANALYSIS: Final = Principal(name="analysis", service=ServiceKind.ANALYSIS)
#: the county's crews: name and skills
CREWS: Final = (("Pipe crew", (Skill.PIPE,)),
                ("Meter and quality crew", (Skill.METER, Skill.WATER_QUALITY)),
                ("Pumps and electrics", (Skill.PUMP_ELECTRICAL, Skill.PIPE)))
RESOLUTION_NOTE: Final = "repaired on site; the analysis no longer finds the problem"


@dataclass
class TicketDatabase:
    """A schema holding the API's tables: an engine and sessions for the service functions,
    and a plain psycopg connection for the board queries (autocommit)."""

    schema: str
    engine: Engine
    sessions: sessionmaker[Session]
    connection: psycopg.Connection


@contextmanager
def ticket_database(admin_url: str = POSTGRES_ADMIN) -> Iterator[TicketDatabase]:
    """A fresh schema with the API's tables on the server at ``admin_url`` (a libpq URL),
    dropped afterwards. Raises psycopg.OperationalError when no server answers."""
    schema = f"ruralwater_dash_{secrets.token_hex(4)}"
    options = f"-csearch_path={schema}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        engine = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                               connect_args={"options": options})
        try:
            Base.metadata.create_all(engine)
            with psycopg.connect(admin_url, autocommit=True, options=options) as connection:
                yield TicketDatabase(schema, engine, sessionmaker(engine), connection)
        finally:
            engine.dispose()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class ReplaySummary:
    """What the replay did: alert changes taken in, plans made, tickets by final status."""

    changes: int = 0
    plans: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def replay_tickets(sessions: sessionmaker[Session], sample: Sample, *,
                   settings: ApiSettings | None = None,
                   planning: SchedulingConfig | None = None) -> ReplaySummary:
    """Replay ``sample``'s passes through the ticket service (see the module docstring)."""
    api = settings or ApiSettings()
    config = planning or SchedulingConfig(time_limit_s=2.0, solution_limit=30,
                                          utc_offset_hours=sample.county.utc_offset_hours)
    summary = ReplaySummary()
    with sessions() as db_session:
        assets.import_county(db_session=db_session, county=sample.county, actor=SYSTEM)
        members = _create_crews(db_session, sample)
    for analysis_pass in sample.passes:
        now = analysis_pass.now
        with sessions() as db_session:
            for change in analysis_pass.changes:
                _take_in(db_session, change.alert, now, api)
                summary.changes += 1
            _work(db_session, members, config, now)
        summary.plans += _plan(sessions, config, now)
    with sessions() as db_session:
        for ticket in db_session.scalars(select(Ticket)):
            summary.statuses[ticket.status.value] = summary.statuses.get(
                ticket.status.value, 0) + 1
    return summary


def _create_crews(db_session: Session, sample: Sample) -> dict[int, Principal]:
    """The county's crews at the depot; crew id -> a member who works its tickets."""
    members: dict[int, Principal] = {}
    for name, skills in CREWS:
        crew = crews.create(db_session=db_session, actor=SYSTEM, crew_in=CrewCreate(
            name=name, skills=list(skills), home_latitude=sample.county.seat_latitude,
            home_longitude=sample.county.seat_longitude))
        members[crew.id] = Principal(name=f"member-of-crew-{crew.id}", role=Role.CREW_MEMBER,
                                     user_id=crew.id, crew_id=crew.id)
    return members


def _take_in(db_session: Session, alert: Alert, now: datetime, api: ApiSettings) -> None:
    """One alert change through intake and the emergency plan, as the API's PUT does; then
    the ticket it opened or joined is put on the pass's clock instead of the wall clock."""
    before = {row.id: (row.due_at, row.sla_class) for row in db_session.execute(
        select(Ticket.id, Ticket.due_at, Ticket.sla_class))}
    result = alert_intake.intake(db_session=db_session, alert=alert, actor=ANALYSIS,
                                 rules=DEFAULT_RULES, settings=api)
    if result.changed:
        emergency.apply_alert(db_session=db_session, alert=alert, plan=default_plan(),
                              actor=ANALYSIS, now=now)
    ticket = result.ticket
    if ticket is None or ticket.updated_at <= now:
        return
    ticket.updated_at = now
    if ticket.id not in before:  # opened by this alert
        ticket.created_at = now
        ticket.due_at = due_at(now, ticket.sla_class, api)
        result.alert.received_at = now
    elif ticket.status in ACTIVE_STATUSES:  # joined: the sooner deadline, from the pass
        ticket.due_at, ticket.sla_class = before[ticket.id]
        rule = DEFAULT_RULES[alert.kind]
        if due_at(now, rule.sla_class, api) < ticket.due_at:
            ticket.due_at, ticket.sla_class = due_at(now, rule.sla_class, api), rule.sla_class
    db_session.commit()


def _work(db_session: Session, members: dict[int, Principal], config: SchedulingConfig,
          now: datetime) -> None:
    """Crews start each scheduled ticket at its planned arrival; they resolve it when the
    planner's service time for its type is over and the analysis has resolved every alert
    of its problem (whichever is later), up to ``now``."""
    cleared: dict[str, datetime] = {
        key: resolved_at for key, resolved_at in db_session.execute(
            select(AlertRecord.key, AlertRecord.resolved_at)
            .where(AlertRecord.status == AlertStatus.RESOLVED)) if resolved_at is not None}
    for ticket in db_session.scalars(select(Ticket).where(
            Ticket.status.in_([TicketStatus.SCHEDULED, TicketStatus.IN_PROGRESS]))
            .order_by(Ticket.scheduled_for, Ticket.id)).all():
        if ticket.crew_id is None:
            continue
        member = members[ticket.crew_id]
        if ticket.status is TicketStatus.SCHEDULED:
            if ticket.scheduled_for is None or ticket.scheduled_for > now:
                continue
            tickets.transition(db_session=db_session, ticket=ticket, actor=member,
                               now=ticket.scheduled_for,
                               move_in=TicketTransition(to=TicketStatus.IN_PROGRESS))
        started = ticket.started_at or now
        service = timedelta(minutes=config.service_minutes.get(ticket.type, 60.0))
        keys = ticket.alert_keys or [ticket.alert_key or ""]
        if not all(key in cleared for key in keys):
            continue
        finished = max([started + service, *(cleared[key] for key in keys)])
        if finished <= now:
            tickets.transition(db_session=db_session, ticket=ticket, actor=member,
                               now=finished, move_in=TicketTransition(
                                   to=TicketStatus.RESOLVED, note=RESOLUTION_NOTE))


def _plan(sessions: sessionmaker[Session], config: SchedulingConfig, now: datetime) -> int:
    """Re-plan the crews when tickets wait for one; 1 when a plan was applied."""
    with sessions() as db_session:
        waiting = db_session.scalar(select(Ticket.id).where(
            Ticket.status.in_([TicketStatus.OPEN, TicketStatus.REOPENED])).limit(1))
        if waiting is None or db_session.scalar(select(Crew.id).limit(1)) is None:
            return 0
    try:
        scheduling.replan(session_factory=sessions, config=config, actor=SYSTEM, now=now)
    except Conflict as exc:
        log.warning("no plan at %s: %s", now.isoformat(), exc)
        return 0
    return 1
