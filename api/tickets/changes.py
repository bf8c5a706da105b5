"""The ticket table's version stamp: one row in ``change_counters``, rewritten in the same
transaction as every ticket write, so a cached ticket listing (api/tickets/cache.py) is
known to be current after reading that one row - in every worker process.

The stamp is a random 62-bit number rather than an increment: a table emptied (tests) or a
database restored from a backup can never bring back a stamp some process still holds.

It is kept by SQLAlchemy session events, so no write path can forget it: a flush that
inserts, changes or deletes a :class:`~api.tickets.models.Ticket`, and any bulk
``update(Ticket)`` / ``delete(Ticket)`` executed through a session, write a new stamp first.
(Only raw SQL on the ``tickets`` table would bypass it.)
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import ORMExecuteState, Session

from api.tickets.models import ChangeCounter, Ticket

TICKETS = "tickets"


def _stamp_statement(connection: Connection, name: str) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE`` of a fresh stamp (both dialects speak it)."""
    values = {"name": name, "version": secrets.randbits(62)}
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(ChangeCounter).values(**values)
    return insert.on_conflict_do_update(index_elements=[ChangeCounter.name],
                                        set_={"version": values["version"]})


def bump(session: Session, name: str = TICKETS) -> None:
    """Write a new stamp for ``name`` in the session's current transaction."""
    connection = session.connection()
    connection.execute(_stamp_statement(connection, name))


def current_version(session: Session, name: str = TICKETS) -> int | None:
    """The stamp now (None before the first write: nothing may be cached then)."""
    return session.scalar(select(ChangeCounter.version).where(ChangeCounter.name == name))


def _touches_tickets(session: Session) -> bool:
    if any(isinstance(obj, Ticket) for obj in session.new) or \
            any(isinstance(obj, Ticket) for obj in session.deleted):
        return True
    return any(isinstance(obj, Ticket) and session.is_modified(obj) for obj in session.dirty)


@event.listens_for(Session, "before_flush")
def _stamp_before_flush(session: Session, _context: object, _instances: object) -> None:
    if _touches_tickets(session):
        bump(session)


@event.listens_for(Session, "do_orm_execute")
def _stamp_bulk_writes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    mapper = state.bind_mapper
    if mapper is not None and mapper.class_ is Ticket:
        bump(state.session)
