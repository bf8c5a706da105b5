"""Request and response bodies of the ticket endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.crews.models import Skill
from api.tickets.models import (
    Priority,
    SlaClass,
    TicketSource,
    TicketStatus,
    TicketType,
)

ShortText = Annotated[str, Field(max_length=300)]
LongText = Annotated[str, Field(max_length=4000)]
AssetId = Annotated[str, Field(min_length=1, max_length=64)]


class TicketCreate(BaseModel):
    """A ticket opened by hand: a hotline (12314) complaint or a dispatcher's own job."""

    model_config = ConfigDict(extra="forbid")

    source: Literal[TicketSource.HOTLINE, TicketSource.MANUAL] = TicketSource.HOTLINE
    title: Annotated[str, Field(min_length=1, max_length=300)]
    description: LongText = ""
    type: TicketType = TicketType.COMPLAINT
    priority: Priority = Priority.NORMAL
    required_skill: Skill = Skill.PIPE
    sla_class: SlaClass = SlaClass.ORDINARY
    village_id: AssetId
    dma_id: AssetId | None = None
    device_id: AssetId | None = None
    household_id: AssetId | None = None
    reporter_name: Annotated[str, Field(max_length=120)] = ""
    reporter_phone: Annotated[str, Field(max_length=32)] = ""


class TicketUpdate(BaseModel):
    """What a dispatcher may change outside the lifecycle."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    description: LongText | None = None
    priority: Priority | None = None
    required_skill: Skill | None = None
    sla_class: SlaClass | None = Field(default=None,
                                       description="changing it recomputes due_at")
    reason: ShortText = ""


class TicketTransition(BaseModel):
    """One lifecycle move; ``crew_id`` is needed to schedule, ``note`` to resolve."""

    model_config = ConfigDict(extra="forbid")

    to: TicketStatus
    reason: ShortText = ""
    note: LongText = Field(default="", description="resolution note (what was fixed)")
    crew_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    scheduled_for: AwareDatetime | None = None
    route_position: int | None = Field(default=None, ge=0)


class TicketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alert_key: str | None = Field(description="the lead alert: the one that opened the "
                                  "ticket or made it what it is")
    problem_key: str | None = Field(description="the problem (e.g. leak:<dma>): every alert "
                                    "of it joins this ticket; null for tickets opened by hand")
    alert_keys: list[str] = Field(description="every alert that joined, in order")
    source: TicketSource
    type: TicketType
    title: str
    description: str
    priority: Priority
    required_skill: str
    sla_class: SlaClass
    status: TicketStatus
    crew_id: int | None
    village_id: str | None
    dma_id: str | None
    device_id: str | None
    household_id: str | None
    reporter_name: str
    reporter_phone: str
    created_at: datetime
    updated_at: datetime
    due_at: datetime
    scheduled_for: datetime | None
    route_position: int | None
    started_at: datetime | None
    resolved_at: datetime | None
    resolution_note: str
    verified_at: datetime | None
    closed_at: datetime | None
    reopen_count: int
    verification: dict[str, Any]
    allowed_next: list[TicketStatus] = Field(
        default_factory=list, description="statuses reachable in one move")
