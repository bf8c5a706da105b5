"""Request and response bodies of the emergency API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.emergency.machine import TaskStatus


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    activation_id: int
    action_code: str
    title: str
    level: str
    assignee_role: str
    assignee: str | None
    status: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    note: str


class LogEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    from_level: str | None
    to_level: str | None
    actor: str
    message: str


class ActivationSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    plan: str
    alert_key: str
    subject: str
    village: str | None
    status: str
    level: str
    peak_level: str
    opened_at: datetime
    changed_at: datetime
    last_alert_at: datetime
    closed_at: datetime | None


class ActivationRead(ActivationSummary):
    evidence: dict[str, Any]
    closed_by: str | None
    close_reason: str | None
    tasks: list[TaskRead]
    log: list[LogEntryRead]


class CloseActivation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    force: bool = Field(default=False,
                        description="close although the data still calls for a level")


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TaskStatus | None = None
    note: Annotated[str | None, Field(max_length=4000)] = None
    assignee: Annotated[str | None, Field(max_length=100)] = None
