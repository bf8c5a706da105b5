"""Record and read the audit trail. Every write in a service function calls :func:`record`
in the same transaction as the change, so a change is never committed without its entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from api.audit.models import AuditEntry
from api.auth.security import Principal
from api.db import utcnow, where_equal
from api.directsql import DirectStatement


def _jsonable(value: Any) -> Any:
    # JSON's own types first: they are most values, and the Mapping check (an ABC) is slow
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)


def values(
    *,
    actor: Principal,
    action: str,
    entity_type: str,
    entity_id: str | int,
    reason: str = "",
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of an audit entry made now (for :func:`record_many`)."""
    system = actor.name == "system"
    return {
        "at": utcnow(),
        "actor": "system" if system else actor.actor,
        "actor_role": "system" if system else actor.role_name,
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "reason": reason,
        "changes": _jsonable(dict(changes or {})),
    }


def record(
    *,
    db_session: Session,
    actor: Principal,
    action: str,
    entity_type: str,
    entity_id: str | int,
    reason: str = "",
    changes: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry (committed with the caller's unit of work)."""
    entry = AuditEntry(**values(actor=actor, action=action, entity_type=entity_type,
                                entity_id=entity_id, reason=reason, changes=changes))
    db_session.add(entry)
    return entry


#: The columns :func:`values` gives.
_ENTRY_COLUMNS = ("at", "actor", "actor_role", "action", "entity_type", "entity_id", "reason",
                  "changes")
#: The table itself, not the mapped class: ``insert(AuditEntry)`` would go through the ORM's
#: bulk-insert layer, which costs more than the statement (alert intake: ~12% of its CPU);
#: run straight on the driver's cursor (api/directsql.py). ``inline``: the new ids are not
#: read back (one entry alone would otherwise be an INSERT ... RETURNING, which alert
#: intake's psycopg pipeline cannot answer before it syncs).
_INSERT_ENTRY = DirectStatement(insert(cast(Table, AuditEntry.__table__)).inline(),
                                column_keys=_ENTRY_COLUMNS)


def record_many(*, db_session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
    """Insert many entries (:func:`values`, all with the same columns) at once, in the
    caller's transaction: one Core executemany, no ORM objects (alert intake audits a whole
    batch this way)."""
    if entries:
        _INSERT_ENTRY.execute_many(db_session.connection(), entries)


def get_all(
    *,
    db_session: Session,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditEntry]:
    """Newest first, filtered by whatever is given."""
    query = where_equal(select(AuditEntry), (AuditEntry.entity_type, entity_type),
                        (AuditEntry.entity_id, entity_id), (AuditEntry.actor, actor),
                        (AuditEntry.action, action))
    query = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    return db_session.scalars(query.limit(limit).offset(offset)).all()
