"""Request and response bodies of the notifications API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    step: int
    audience: str
    reason: str
    reminder_number: int
    channel: str
    sent_at: datetime
    ok: bool
    attempts: int
    status_code: int | None
    error: str | None


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subject: str
    title: str
    text: str
    severity: str
    url: str | None
    policy: str
    crew_id: int | None
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    next_check_at: datetime | None
    deliveries: list[DeliveryRead]
