"""Alert intake: store the latest version of each alert (idempotent by key), keep its
ticket in step, list, acknowledge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import ARRAY, Connection, String, Table, any_, bindparam, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, configure_mappers

from api.alerts.models import AlertRecord
from api.audit import service as audit
from api.auth.security import Principal
from api.db import utcnow, where_equal
from api.directsql import DirectStatement
from api.errors import NotFound
from api.tickets import service as tickets
from api.tickets.models import Ticket
from api.tickets.rules import TicketRule
from common.alerts import Alert, AlertKind, AlertStatus, Severity
from common.settings import ApiSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    alert: AlertRecord
    created: bool
    changed: bool
    ticket: Ticket | None


def _columns(alert: Alert) -> dict[str, Any]:
    """The alert as table columns (place flattened, window as JSON)."""
    return {
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.title,
        **alert.place.model_dump(),
        "started_at": alert.started_at,
        "detected_at": alert.detected_at,
        "updated_at": alert.updated_at,
        "resolved_at": alert.resolved_at,
        "evidence": dict(alert.evidence),
        "window": alert.window.model_dump(mode="json") if alert.window else None,
        "plan_level": alert.plan_level,
    }


def values_of(record: AlertRecord, names: Iterable[str]) -> dict[str, Any]:
    """``record``'s attributes ``names``, read from its dict where they are loaded (a batch
    reads ~40 attributes per alert, and the ORM's instrumented get is most of the cost of
    each); one not loaded (never set on a new record, or expired) goes the ORM's way."""
    loaded = record.__dict__
    return {name: loaded[name] if name in loaded else getattr(record, name) for name in names}


def _differs(record: AlertRecord, columns: Mapping[str, Any]) -> dict[str, Any]:
    stored = values_of(record, columns)
    return {name: value for name, value in columns.items() if stored[name] != value}


def get(*, db_session: Session, key: str) -> AlertRecord:
    record = db_session.scalar(select(AlertRecord).where(AlertRecord.key == key))
    if record is None:
        raise NotFound(f"no alert {key!r}")
    return record


class Stored:
    """What a batch knows of each key it has seen: the stored alert and its linked ticket.

    Alerts a batch reads are kept out of the session (``detach``): the unit of work would
    spend more than the write itself finding and writing their changes, so :func:`apply`
    notes the columns it changed (:meth:`changed`) and :meth:`write_changes` writes them as
    one ``UPDATE ... WHERE id = ?`` per set of columns, executemany (in id order, so two
    batches updating the same rows lock them in the same order). A new alert is an ORM
    object in the session, written by the flush, as are tickets.
    """

    def __init__(self, found: dict[str, tuple[AlertRecord, Ticket | None]], *,
                 detached: bool) -> None:
        self._found = found
        self._detached = set(found) if detached else set()
        self._changed: dict[str, tuple[AlertRecord, set[str]]] = {}

    def get(self, key: str) -> tuple[AlertRecord | None, Ticket | None]:
        return self._found.get(key, (None, None))

    def keep(self, record: AlertRecord, ticket: Ticket | None) -> None:
        """The alert as it stands now (a later alert of its key in the batch sees it)."""
        self._found[record.key] = (record, ticket)

    def changed(self, record: AlertRecord, columns: Iterable[str]) -> None:
        """``columns`` of ``record`` were changed (written now if it is in the session)."""
        if record.key in self._detached:
            _, noted = self._changed.setdefault(record.key, (record, set()))
            noted.update(columns)

    def write_changes(self, db_session: Session) -> None:
        """Write the changed columns of the detached alerts, one statement per shape."""
        shapes: dict[frozenset[str], list[AlertRecord]] = {}
        for record, noted in self._changed.values():
            shapes.setdefault(frozenset(noted), []).append(record)
        self._changed.clear()
        connection = db_session.connection()
        for shape, records in shapes.items():
            _update_by_id(shape).execute_many(connection, [
                {"_id": record.id, **values_of(record, shape)}
                for record in sorted(records, key=lambda record: record.id)])


_ALERTS = cast(Table, AlertRecord.__table__)
_UPDATE_BY_ID = update(_ALERTS).where(_ALERTS.c.id == bindparam("_id"))


@lru_cache(maxsize=64)
def _update_by_id(shape: frozenset[str]) -> DirectStatement:
    """``UPDATE alerts SET <shape> WHERE id = :_id``, run straight on the driver's cursor
    (api/directsql.py; a batch's changes come in a handful of shapes)."""
    return DirectStatement(_UPDATE_BY_ID, column_keys=sorted(shape))


def load_stored(*, db_session: Session, keys: Iterable[str], detach: bool = False) -> Stored:
    """The stored alerts named ``keys`` with their linked tickets, in one query; with
    ``detach`` the alerts are read as rows outside the session (:func:`_outside_session`;
    their changes are written by :meth:`Stored.write_changes`), the tickets still as ORM
    objects in it."""
    wanted = sorted(set(keys))
    if not wanted:
        return Stored({}, detached=detach)
    if detach:
        return Stored(_read_outside_session(db_session, wanted), detached=True)
    rows = db_session.execute(
        select(AlertRecord, Ticket).outerjoin(Ticket, Ticket.id == AlertRecord.ticket_id)
        .where(AlertRecord.key.in_(wanted))).all()
    return Stored({record.key: (record, ticket) for record, ticket in rows}, detached=False)


#: The alert columns by name, in table order (``AlertRecord``'s attributes have the same names).
_ALERT_NAMES = tuple(column.key for column in _ALERTS.c)
_TICKETS = cast(Table, Ticket.__table__)
#: Of the linked ticket, what ticket sync reads when the alert changes nothing on it.
_READ_COLUMNS = (*_ALERTS.c, *(_TICKETS.c[name] for name in tickets.SYNC_COLUMNS))
_READ_FROM = _ALERTS.outerjoin(_TICKETS, _TICKETS.c.id == _ALERTS.c.ticket_id)
#: On PostgreSQL: the keys one array parameter, the statement run straight on the driver's
#: cursor (api/directsql.py).
_READ_BY_KEY_ARRAY = DirectStatement(select(*_READ_COLUMNS).select_from(_READ_FROM).where(
    _ALERTS.c.key == any_(bindparam("keys", type_=ARRAY(String)))))
#: Elsewhere: one statement for every batch (the keys an expanding parameter), its cache
#: key computed once, not per batch as for a statement built around the batch's keys.
_READ_BY_KEYS = select(*_READ_COLUMNS).select_from(_READ_FROM).where(
    _ALERTS.c.key.in_(bindparam("keys", expanding=True)))
#: Where the linked ticket's id is in a row of that read (None: no ticket).
_TICKET_ID = len(_ALERT_NAMES) + tickets.SYNC_COLUMNS.index("id")


def _read_rows(connection: Connection, keys: Sequence[str]) -> Sequence[Sequence[Any]]:
    if connection.dialect.name == "postgresql":
        return _READ_BY_KEY_ARRAY.rows(connection, {"keys": list(keys)})
    return connection.execute(_READ_BY_KEYS, {"keys": keys}).all()


def _read_outside_session(db_session: Session,
                          keys: Sequence[str]) -> dict[str, tuple[AlertRecord, Ticket | None]]:
    """The alerts and their tickets in one Core query, none of them loaded into the
    session (filling its identity map and emptying it again cost more than the query):
    the alerts as plain column values, each ticket as :func:`tickets.known_ticket` (one
    object per ticket, whichever alerts share it)."""
    # the instances are made by the class manager, which needs configured mappers (the
    # ORM configures them on its first query; a process may take alerts in before that)
    configure_mappers()
    found: dict[str, tuple[AlertRecord, Ticket | None]] = {}
    known: dict[int, Ticket] = {}
    alert_width = len(_ALERT_NAMES)
    for row in _read_rows(db_session.connection(), keys):
        record = _outside_session(zip(_ALERT_NAMES, row[:alert_width], strict=True))
        ticket_id = row[_TICKET_ID]
        ticket = None
        if ticket_id is not None:
            ticket = known.get(ticket_id)
            if ticket is None:
                ticket = known[ticket_id] = tickets.known_ticket(
                    dict(zip(tickets.SYNC_COLUMNS, row[alert_width:], strict=True)))
        found[record.key] = (record, ticket)
    return found


def _outside_session(values: Iterable[tuple[str, Any]]) -> AlertRecord:
    """A stored alert's row as an ``AlertRecord`` that belongs to no session: its values go
    straight into the instance's dict, as the ORM's loader puts them (no attribute events);
    a later change (:func:`apply`) is an ordinary attribute set, written by
    :meth:`Stored.write_changes`."""
    record = _new_alert_record()
    record.__dict__.update(values)
    return record


_new_alert_record = cast(Callable[[], AlertRecord],
                         sa_inspect(AlertRecord).class_manager.new_instance)


def intake(
    *,
    db_session: Session,
    alert: Alert,
    actor: Principal,
    rules: Mapping[AlertKind, TicketRule],
    settings: ApiSettings,
) -> IntakeResult:
    """Store ``alert`` under its key and keep its problem's ticket in step; a repeat is a
    no-op. Commits.

    The analysis re-sends unchanged alerts often, so the stored alert and its ticket come
    back in one query and a repeat touches nothing else. Two alerts of one problem arriving
    at once (two workers) may both try to open its ticket; the loser's transaction fails on
    the one-current-ticket-per-problem index and is replayed once, joining the winner's.
    (The API takes alerts in batches, api/alerts/writer.py; this is the one-alert path.)
    """
    for attempt in (1, 2):
        try:
            result = apply(db_session=db_session, alert=alert, actor=actor, rules=rules,
                           settings=settings)
            if result.changed:
                db_session.commit()
            return result
        except IntegrityError:
            if attempt == 2:
                raise
            db_session.rollback()
            log.info("alert %s raced another for its problem's ticket: replaying", alert.key)
    raise AssertionError("unreachable")  # pragma: no cover


def apply(
    *,
    db_session: Session,
    alert: Alert,
    actor: Principal,
    rules: Mapping[AlertKind, TicketRule],
    settings: ApiSettings,
    stored: Stored | None = None,
    audit_entries: list[dict[str, Any]] | None = None,
) -> IntakeResult:
    """:func:`intake` without the commit: the change (alert, audit entry, ticket) is left in
    the session's transaction.

    ``stored`` is what the caller already loaded (:func:`load_stored`) for a batch of
    alerts: a key missing from it is new. It is kept up to date (a new alert is added), so
    a later alert of the same key in the batch sees this one; the changes of its detached
    alerts are the caller's to write (:meth:`Stored.write_changes`). Without it, this
    alert's row is read here and changed in the session. The alert's audit entry goes to
    ``audit_entries`` when given (the caller inserts a batch's entries at once,
    :func:`api.audit.service.record_many`), else into the session.
    """
    if stored is None:
        stored = load_stored(db_session=db_session, keys=(alert.key,))
    record, linked = stored.get(alert.key)
    columns = _columns(alert)
    created = record is None
    reraised = False
    written: set[str] = set()
    if record is None:
        record = AlertRecord(key=alert.key, revision=1, received_at=utcnow(), **columns)
        db_session.add(record)
        changes: dict[str, Any] = {"kind": alert.kind.value, "severity": alert.severity.value,
                                   "status": alert.status.value}
        action = "alert.create"
    else:
        changes = _differs(record, columns)
        if not changes:
            return IntakeResult(alert=record, created=False, changed=False, ticket=linked)
        reraised = (record.status is AlertStatus.RESOLVED
                    and alert.status is AlertStatus.OPEN)
        written = _update(record, columns, changes, reraised=reraised)
        action = "alert.resolve" if "status" in changes and \
            alert.status is AlertStatus.RESOLVED else "alert.update"
    if audit_entries is None:
        audit.record(db_session=db_session, actor=actor, action=action, entity_type="alert",
                     entity_id=alert.key, changes=changes)
    else:
        audit_entries.append(audit.values(actor=actor, action=action, entity_type="alert",
                                          entity_id=alert.key, changes=changes))
    ticket = tickets.sync_with_alert(db_session=db_session, alert=record, contract=alert,
                                     rules=rules, actor=actor, settings=settings,
                                     linked=linked, opening=created or reraised)
    if ticket is not None and record.ticket_id != ticket.id:
        record.ticket_id = ticket.id
        written.add("ticket_id")
    stored.changed(record, written)
    stored.keep(record, ticket)
    return IntakeResult(alert=record, created=created, changed=True, ticket=ticket)


def _update(record: AlertRecord, columns: Mapping[str, Any], changes: Mapping[str, Any], *,
            reraised: bool) -> set[str]:
    """Bring a stored alert up to the new version's ``columns`` (``changes`` differ); the
    columns it set. A ``reraised`` alert (open again after it resolved) loses its
    acknowledgement: nobody has seen this episode yet."""
    written = {*changes, "revision", "received_at"}
    if reraised:
        record.acknowledged_at = None
        record.acknowledged_by = None
        written.update(("acknowledged_at", "acknowledged_by"))
    for name in changes:
        setattr(record, name, columns[name])
    record.revision += 1
    record.received_at = utcnow()
    return written


def get_all(
    *,
    db_session: Session,
    status: AlertStatus | None = None,
    kind: AlertKind | None = None,
    severity: Severity | None = None,
    village: str | None = None,
    dma: str | None = None,
    acknowledged: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AlertRecord]:
    """Most recently updated first."""
    query = where_equal(select(AlertRecord), (AlertRecord.status, status),
                        (AlertRecord.kind, kind), (AlertRecord.severity, severity),
                        (AlertRecord.village, village), (AlertRecord.dma, dma))
    if acknowledged is not None:
        query = query.where(AlertRecord.acknowledged_at.is_not(None) if acknowledged
                            else AlertRecord.acknowledged_at.is_(None))
    query = query.order_by(AlertRecord.updated_at.desc(), AlertRecord.id.desc())
    return db_session.scalars(query.limit(limit).offset(offset)).all()


def acknowledge(*, db_session: Session, record: AlertRecord, actor: Principal,
                note: str = "") -> AlertRecord:
    """Someone has seen it; acknowledging twice keeps the first acknowledgement."""
    if record.acknowledged_at is None:
        record.acknowledged_at = utcnow()
        record.acknowledged_by = actor.actor
        audit.record(db_session=db_session, actor=actor, action="alert.acknowledge",
                     entity_type="alert", entity_id=record.key, reason=note)
        db_session.commit()
    return record
