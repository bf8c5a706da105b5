"""Tell people about ticket changes through api/notify (escalating reminders).

A ticket that needs dispatching (new or reopened) raises a notice to the dispatchers; a
scheduled ticket raises one to its crew; a resolved, verified or cancelled ticket closes its
notices. Called inside the ticket's unit of work (no commit here).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.assets.models import Household
from api.notify import service as notify
from api.notify.message import NoticeSeverity
from api.tickets.models import Priority, Ticket, TicketStatus

_CLOSING = frozenset({TicketStatus.RESOLVED, TicketStatus.VERIFIED, TicketStatus.CANCELLED})
_DISPATCH = frozenset({TicketStatus.OPEN, TicketStatus.REOPENED})


def subject_of(ticket: Ticket) -> str:
    return f"ticket:{ticket.id}"


def _text(ticket: Ticket) -> str:
    where = ", ".join(part for part in (ticket.village_id, ticket.dma_id, ticket.household_id,
                                        ticket.device_id) if part)
    return (f"**{ticket.type.value}**, priority {ticket.priority.value}, at {where or 'county'}"
            f"\n\ndue {ticket.due_at:%Y-%m-%d %H:%M} UTC\n\n{ticket.description}")


def _policy(db_session: Session, ticket: Ticket) -> str:
    if ticket.household_id:
        household = db_session.get(Household, ticket.household_id)
        if household is not None and household.monitored:
            return "monitored_household"
    return "default"


def ticket_changed(*, db_session: Session, ticket: Ticket) -> None:
    """Raise, refresh or close the notices of ``ticket`` for its current status."""
    subject = subject_of(ticket)
    if ticket.status in _CLOSING:
        notify.close_subject(db_session=db_session, subject=subject, commit=False)
        return
    if ticket.status not in _DISPATCH and ticket.status is not TicketStatus.SCHEDULED:
        return
    severity = NoticeSeverity.CRITICAL if ticket.priority is Priority.URGENT \
        else NoticeSeverity.WARNING
    crew_id = ticket.crew_id if ticket.status is TicketStatus.SCHEDULED else None
    if crew_id is not None:
        # a new crew takes over: the dispatchers' notice is done
        notify.close_subject(db_session=db_session, subject=subject, commit=False)
    notify.raise_notice(db_session=db_session, subject=subject, title=ticket.title,
                        text=_text(ticket), severity=severity, crew_id=crew_id,
                        policy=_policy(db_session, ticket), commit=False)
