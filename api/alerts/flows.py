"""Receiving an alert: store it (and keep its ticket in step), then let the emergency plans
see it (a shortage alert may activate, escalate or stand down a plan).

:func:`receive_batch` takes the alerts waiting in the API's intake writer
(api/alerts/writer.py) in one transaction and one commit, with the same result for each
alert as if it had come alone (a failed batch is taken in again alert by alert).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from api.alerts import service
from api.alerts.schemas import AlertRead
from api.alerts.service import IntakeResult, Stored
from api.audit import service as audit
from api.auth.security import Principal
from api.directsql import driver_errors
from api.emergency import service as emergency
from api.emergency.plans import PlanDefinition
from api.tickets.rules import TicketRule
from common.alerts import Alert, AlertKind
from common.settings import ApiSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Submission:
    """One alert to take in, and who sent it."""

    alert: Alert
    actor: Principal


@dataclass(frozen=True, slots=True)
class Received:
    """The answer to one submission: the alert as stored then (the response body, JSON)
    and whether it was new."""

    body: bytes
    created: bool


#: Per submission, in order: its answer, or the error it failed with alone.
Outcome = Received | Exception


_ANSWER_FIELDS = tuple(AlertRead.model_fields)


def _answer(result: IntakeResult) -> Received:
    """The alert as stored now, as JSON. Taken at once: a later alert of the same key in the
    batch changes the same record. Validated from a dict of the record's values (~30% less
    CPU than pydantic reading the ORM attributes; ``model_construct`` was slower still)."""
    read = AlertRead.model_validate(service.values_of(result.alert, _ANSWER_FIELDS))
    return Received(body=read.model_dump_json().encode(), created=result.created)


def _apply_one(db_session: Session, submission: Submission,
               rules: Mapping[AlertKind, TicketRule], plans: Sequence[PlanDefinition],
               settings: ApiSettings, stored: Stored,
               audit_entries: list[dict[str, Any]]) -> Received:
    """One alert and its plans' changes, in the session's transaction (no commit; its
    audit entry goes to ``audit_entries``)."""
    result = service.apply(db_session=db_session, alert=submission.alert,
                           actor=submission.actor, rules=rules, settings=settings,
                           stored=stored, audit_entries=audit_entries)
    if result.changed:
        for plan in plans:
            emergency.apply_alert(db_session=db_session, alert=submission.alert, plan=plan,
                                  actor=submission.actor, commit=False)
    return _answer(result)


def _commit(db_session: Session, batch: Sequence[Submission],
            rules: Mapping[AlertKind, TicketRule], plans: Sequence[PlanDefinition],
            settings: ApiSettings) -> list[Received]:
    """Read the batch's stored alerts at once, apply ``batch`` in order, write the changed
    alerts and the audit entries in a statement or two each, and commit.

    On PostgreSQL a batch of updates costs two round trips: the read, taken before the
    transaction begins (:func:`_before_transaction`), then BEGIN, the writes and COMMIT in
    one pipeline (:func:`_one_round_trip`)."""
    with _before_transaction(db_session):
        stored = service.load_stored(db_session=db_session,
                                     keys=(s.alert.key for s in batch), detach=True)
    entries: list[dict[str, Any]] = []
    answers = [_apply_one(db_session, submission, rules, plans, settings, stored, entries)
               for submission in batch]
    db_session.flush()  # the ORM's changes (new alerts, tickets) before the pipeline
    with _one_round_trip(db_session):
        stored.write_changes(db_session)
        audit.record_many(db_session=db_session, entries=entries)
    db_session.commit()  # the session's own end (on PostgreSQL the pipeline committed)
    return answers


def _psycopg(connection: Connection) -> Any | None:
    """The psycopg connection under ``connection`` (PostgreSQL), else ``None``."""
    driver = connection.connection.driver_connection
    return driver if hasattr(driver, "pipeline") else None


@contextmanager
def _before_transaction(db_session: Session) -> Iterator[None]:
    """On PostgreSQL (psycopg), the statements inside run in autocommit: no BEGIN, which
    psycopg would send and wait for on its own. A read there sees what it would see as
    the transaction's first statement (READ COMMITTED takes a snapshot per statement and
    a plain SELECT takes no locks); the transaction then begins with the first write.
    Elsewhere nothing."""
    driver = _psycopg(db_session.connection())
    if driver is None or driver.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    driver.autocommit = True
    try:
        yield
    finally:
        _leave_autocommit(driver)


@contextmanager
def _one_round_trip(db_session: Session) -> Iterator[None]:
    """On PostgreSQL (psycopg), a pipeline that commits: the writes inside, then COMMIT, go
    out together and are synced once. When nothing was written before it, the pipeline
    also begins the transaction, with a BEGIN of its own: psycopg would send its BEGIN
    and wait for the answer (a round trip of its own), so the driver is in autocommit
    meanwhile and the transaction is this explicit BEGIN ... COMMIT.

    An error found at the sync comes from the driver, outside SQLAlchemy; it is raised as
    SQLAlchemy would have (its ``DBAPIError`` subclass, the connection invalidated if it
    broke), so the batch's replay and the writer's connection check see the same errors
    either way: a COMMIT that fails there fails the batch. Elsewhere nothing (the caller
    commits)."""
    connection = db_session.connection()
    driver = _psycopg(connection)
    if driver is None:
        yield
        return
    begins = driver.info.transaction_status == TransactionStatus.IDLE
    if begins:
        driver.autocommit = True
    try:
        with driver_errors(connection), driver.pipeline():
            if begins:
                driver.execute("BEGIN")
            yield
            driver.execute("COMMIT")
    finally:
        if begins:
            _leave_autocommit(driver)


def _leave_autocommit(driver: Any) -> None:
    """Back to the driver's own transactions, an explicit one ended (rolled back when it
    failed); a broken connection is left as it is (the writer replaces it)."""
    if driver.closed or driver.broken:
        return
    if driver.info.transaction_status != TransactionStatus.IDLE:
        driver.rollback()
    driver.autocommit = False


def receive_batch(*, session_factory: Callable[[], Session], batch: Sequence[Submission],
                  rules: Mapping[AlertKind, TicketRule], plans: Iterable[PlanDefinition],
                  settings: ApiSettings,
                  batch_session: Callable[[], Session] | None = None) -> list[Outcome]:
    """Take in ``batch`` in arrival order: one query for the stored alerts and their
    tickets, every change, one commit. Each outcome is what that alert alone would have
    given (same body, same ``created``, same error).

    Should anything fail (an alert that does not fit the database, two workers racing to
    open one problem's ticket, a deadlock between two batches), nothing of the batch is
    kept and each alert is taken in again in a transaction of its own (a race replays
    once): one bad alert fails alone and the others commit.

    ``batch_session`` opens the session of the batch's one transaction (the intake writer's
    connection kept between batches); ``session_factory``, the default, those of the
    replays.
    """
    plan_list = list(plans)
    first = batch_session or session_factory
    if len(batch) == 1:
        return [_receive_alone(first, session_factory, batch[0], rules, plan_list, settings)]
    with first() as db_session:
        try:
            return list(_commit(db_session, batch, rules, plan_list, settings))
        except Exception as exc:  # noqa: BLE001 - each alert is retried alone below
            db_session.rollback()
            log.info("a batch of %d alerts failed (%s): taking them in one by one",
                     len(batch), type(exc).__name__)
    return [_receive_alone(session_factory, session_factory, submission, rules, plan_list,
                           settings)
            for submission in batch]


#: PostgreSQL's deadlock and serialisation failures: the transaction may simply be replayed.
_REPLAYABLE_STATES = frozenset({"40P01", "40001"})


def _replayable(exc: Exception) -> bool:
    """A lost race (the one-current-ticket-per-problem index), a deadlock, or a connection
    found broken (the database restarted while the writer kept it)."""
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError) and \
        getattr(exc.orig, "sqlstate", None) in _REPLAYABLE_STATES


def _receive_alone(first_session: Callable[[], Session], replay_session: Callable[[], Session],
                   submission: Submission, rules: Mapping[AlertKind, TicketRule],
                   plans: Sequence[PlanDefinition], settings: ApiSettings) -> Outcome:
    """One alert in its own transaction (in a session of ``first_session``); a lost race
    for a problem's ticket, a deadlock or a broken connection replays once (in one of
    ``replay_session``). Its error, if any, is returned (the writer raises it in that
    alert's request)."""
    for attempt, sessions in ((1, first_session), (2, replay_session)):
        with sessions() as db_session:
            try:
                [answer] = _commit(db_session, [submission], rules, plans, settings)
                return answer
            except Exception as exc:  # noqa: BLE001 - raised again in the alert's request
                db_session.rollback()
                if attempt == 2 or not _replayable(exc):
                    return exc
                log.info("alert %s: replaying after %s", submission.alert.key,
                         type(exc).__name__)
    raise AssertionError("unreachable")  # pragma: no cover
