"""Response bodies of the alert endpoints (the request body is common.alerts.Alert)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from common.alerts import AlertKind, AlertStatus, Severity


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    title: str
    township: str | None
    village: str | None
    scheme: str | None
    dma: str | None
    branch: str | None
    device: str | None
    household: str | None
    monitored: bool
    started_at: datetime
    detected_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    evidence: dict[str, Any]
    window: dict[str, Any] | None
    plan_level: str | None
    revision: int
    received_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ticket_id: int | None = None


class Acknowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=300)] = ""
