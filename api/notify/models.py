"""The persistent side of notifications: what was raised, every copy sent, and the ack."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, UtcDateTime


class Notification(Base):
    """Something that needs a person: reminded and escalated until acknowledged or closed."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: what it is about, e.g. ``ticket:42`` or ``emergency:7``; one open row per subject
    subject: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(500))
    #: name of the escalation policy in the notify configuration
    policy: Mapped[str] = mapped_column(String(64))
    #: the crew whose group gets the ``crew`` audience (None: the default crew route)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id", ondelete="SET NULL"))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    #: closed without an acknowledgement (the ticket was resolved, the plan stood down)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: when the escalation policy must next be consulted; None: nothing more to send
    next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)

    deliveries: Mapped[list[NotificationDelivery]] = relationship(
        back_populates="notification", order_by="NotificationDelivery.id",
        cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None and self.closed_at is None


class NotificationDelivery(Base):
    """One copy sent (or tried) to one channel: the escalation history and the delivery log."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    reminder_number: Mapped[int] = mapped_column(Integer, default=0)
    #: channel name from the configuration; "" when no channel is routed to the audience
    channel: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    notification: Mapped[Notification] = relationship(back_populates="deliveries")
