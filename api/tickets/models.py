"""The ticket table and its vocabularies (status, type, priority, SLA class, source)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, UtcDateTime, utcnow


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


def _enum(enum: type[StrEnum], length: int = 20) -> Enum:
    return Enum(enum, native_enum=False, length=length, values_callable=_values)


class TicketStatus(StrEnum):
    OPEN = "open"
    SCHEDULED = "scheduled"
    EN_ROUTE = "en_route"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    REOPENED = "reopened"
    CANCELLED = "cancelled"


#: Statuses in which the problem still needs a crew.
ACTIVE_STATUSES = frozenset({TicketStatus.OPEN, TicketStatus.SCHEDULED, TicketStatus.EN_ROUTE,
                             TicketStatus.IN_PROGRESS, TicketStatus.REOPENED})
CLOSED_STATUSES = frozenset({TicketStatus.VERIFIED, TicketStatus.CANCELLED})


class TicketType(StrEnum):
    """What kind of job; decides how the fix is verified from telemetry."""

    LEAK = "leak"  # DMA night flow back to baseline for N nights
    LEAK_SURVEY = "leak_survey"  # chronic losses: the DMA's real losses back under the grade
    VALVE = "valve"  # the meter's valve reports open
    OFFLINE_DEVICE = "offline_device"  # readings resume
    METER = "meter"  # battery, tamper, reverse flow: a meter visit
    PUMP = "pump"
    WATER_QUALITY = "water_quality"
    SUPPLY = "supply"
    COMPLAINT = "complaint"  # a hotline (12314) complaint
    OTHER = "other"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """1 (low) .. 4 (urgent): weights for the planner."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.LOW: 1, Priority.NORMAL: 2, Priority.HIGH: 3, Priority.URGENT: 4}


class SlaClass(StrEnum):
    """The county's repair commitments (hours in settings: 12 / 24 / 48 by default)."""

    MINOR = "minor"
    ORDINARY = "ordinary"
    MAJOR = "major"


class TicketSource(StrEnum):
    ALERT = "alert"
    HOTLINE = "hotline"  # 12314 complaints
    MANUAL = "manual"  # a dispatcher's own


#: A ticket is current (not closed) while ``closed_at`` is unset: open, scheduled, on the
#: way, in progress, resolved (awaiting verification) or reopened.
CURRENT_TICKET = text("closed_at IS NULL")


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # One current ticket per problem (tickets.problem_key); closed ones keep their key.
        Index("uq_tickets_current_problem", "problem_key", unique=True,
              sqlite_where=CURRENT_TICKET, postgresql_where=CURRENT_TICKET),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The lead alert of a ticket made from alerts: the one that opened it, or the one that
    #: made it what it is (a leak alert turning a leak survey into a leak repair).
    alert_key: Mapped[str | None] = mapped_column(String(200), index=True)
    #: The problem the ticket is about (``leak:<dma>``, ``device:<id>``...: the ticket
    #: rules derive it from each alert); every alert of the same problem joins this ticket.
    #: None for tickets opened by hand.
    problem_key: Mapped[str | None] = mapped_column(String(200), index=True)
    #: Every alert key that joined the ticket, in order of arrival.
    alert_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[TicketSource] = mapped_column(_enum(TicketSource))
    type: Mapped[TicketType] = mapped_column(_enum(TicketType), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[Priority] = mapped_column(_enum(Priority))
    required_skill: Mapped[str] = mapped_column(String(32))
    sla_class: Mapped[SlaClass] = mapped_column(_enum(SlaClass))
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id"), index=True)
    #: Where the crew goes: at least the village; DMA, device, household when known.
    village_id: Mapped[str | None] = mapped_column(ForeignKey("villages.id"), index=True)
    dma_id: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64))
    household_id: Mapped[str | None] = mapped_column(String(64))
    reporter_name: Mapped[str] = mapped_column(String(120), default="")
    reporter_phone: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Position in the crew's route for the day (the planner's order), 0 first.
    route_position: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    #: The last telemetry verification: outcome, nights checked, figures.
    verification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChangeCounter(Base):
    """A version stamp per table whose readers cache: a new random ``version`` is written in
    the same transaction as every change of that table (api/tickets/changes.py), so a
    process knows its cached answer is current by reading one row."""

    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
