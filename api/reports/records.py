"""The input of every report: one flat record per ticket (independent of the ORM)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class TicketRecord(BaseModel):
    """What a report needs to know about one ticket. Times are aware datetimes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    type: Annotated[str, Field(min_length=1, description="leak, valve, pump, complaint...")]
    priority: Annotated[str, Field(min_length=1, description="low, normal, high, urgent")]
    village: str | None = None
    crew: str | None = Field(default=None, description="the crew's name; None: unassigned")
    created_at: AwareDatetime
    sla_deadline: AwareDatetime = Field(description="when the repair commitment runs out")
    resolved_at: AwareDatetime | None = None
    verified_at: AwareDatetime | None = None
    cancelled: bool = Field(default=False, description="withdrawn: not held to the SLA")
    reopen_count: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _times_in_order(self) -> TicketRecord:
        if self.sla_deadline < self.created_at:
            raise ValueError(f"ticket {self.id}: SLA deadline before creation")
        if self.resolved_at is not None and self.resolved_at < self.created_at:
            raise ValueError(f"ticket {self.id}: resolved before it was created")
        if self.verified_at is not None and (self.resolved_at is None
                                             or self.verified_at < self.resolved_at):
            raise ValueError(f"ticket {self.id}: verified without or before its resolution")
        return self
