"""Ticket rows from the database as report records (the only part that knows the ORM)."""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.crews.models import Crew
from api.reports.records import TicketRecord
from api.tickets.models import Ticket, TicketStatus

logger = logging.getLogger(__name__)


def ticket_records(*, db_session: Session, start: datetime | None = None,
                   end: datetime | None = None) -> list[TicketRecord]:
    """Tickets created in ``[start, end)`` with their crew's name.

    A row whose times contradict each other is left out and logged (a report must not fail
    on one bad row, nor silently bend it).
    """
    query = select(Ticket, Crew.name).outerjoin(Crew, Ticket.crew_id == Crew.id)
    if start is not None:
        query = query.where(Ticket.created_at >= start)
    if end is not None:
        query = query.where(Ticket.created_at < end)
    records: list[TicketRecord] = []
    for ticket, crew_name in db_session.execute(query.order_by(Ticket.id)):
        try:
            records.append(TicketRecord(
                id=ticket.id, type=ticket.type.value, priority=ticket.priority.value,
                village=ticket.village_id, crew=crew_name, created_at=ticket.created_at,
                sla_deadline=ticket.due_at, resolved_at=ticket.resolved_at,
                verified_at=ticket.verified_at,
                cancelled=ticket.status is TicketStatus.CANCELLED,
                reopen_count=ticket.reopen_count))
        except ValidationError as exc:
            logger.warning("ticket %d left out of the report: %s", ticket.id, exc)
    return records
