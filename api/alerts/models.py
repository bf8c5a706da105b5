"""The stored alert: the latest version of what the analysis sent under one key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, UtcDateTime, utcnow
from common.alerts import AlertKind, AlertStatus, Severity


def _values(enum: type[AlertKind] | type[AlertStatus] | type[Severity]) -> list[str]:
    return [member.value for member in enum]


class AlertRecord(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[AlertKind] = mapped_column(
        Enum(AlertKind, native_enum=False, length=32, values_callable=_values), index=True)
    severity: Mapped[Severity] = mapped_column(
        Enum(Severity, native_enum=False, length=16, values_callable=_values))
    status: Mapped[AlertStatus] = mapped_column(
        Enum(AlertStatus, native_enum=False, length=16, values_callable=_values), index=True)
    title: Mapped[str] = mapped_column(String(300))
    township: Mapped[str | None] = mapped_column(String(64))
    village: Mapped[str | None] = mapped_column(String(64), index=True)
    scheme: Mapped[str | None] = mapped_column(String(64))
    dma: Mapped[str | None] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(64))
    household: Mapped[str | None] = mapped_column(String(64))
    monitored: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    window: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    plan_level: Mapped[str | None] = mapped_column(String(4))
    #: How many times the analysis sent a changed version of this alert.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    #: The ticket that took this alert's problem (the latest one, when it recurred).
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
