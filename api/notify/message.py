"""What a notification says, independent of the channel that carries it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class NoticeSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class NoticeReason(StrEnum):
    """Why this copy is sent: the first time, a repeat, or a hand-up to the next role."""

    FIRST = "first"
    REMINDER = "reminder"
    ESCALATION = "escalation"


class Notice(BaseModel):
    """One message to one audience, before a channel formats it.

    ``text`` is Markdown (headings, bold, lists, links), the common subset WeCom and DingTalk
    robots render; channels that only take plain text get it as it is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: Annotated[str, Field(min_length=1, max_length=200,
                                  description="what it is about, e.g. ticket:42")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    text: Annotated[str, Field(max_length=20_000)]
    severity: NoticeSeverity = NoticeSeverity.WARNING
    url: str | None = Field(default=None, description="where to see and acknowledge it")
    audience: str = Field(default="", description="the role it goes to: crew, dispatcher...")
    reason: NoticeReason = NoticeReason.FIRST
    reminder_number: int = Field(default=0, ge=0, description="0 for the first copy at a step")
    mention_mobiles: tuple[str, ...] = ()
    mention_user_ids: tuple[str, ...] = ()

    def headline(self) -> str:
        """The title with the reason in front for repeats and escalations."""
        if self.reason is NoticeReason.REMINDER:
            return f"[Reminder {self.reminder_number}] {self.title}"
        if self.reason is NoticeReason.ESCALATION:
            return f"[Escalated] {self.title}"
        return self.title

    def markdown(self, heading: str | None = None) -> str:
        """Heading (the headline unless given), body and link as one Markdown document."""
        parts = [f"### {heading or self.headline()}", self.text]
        if self.url:
            parts.append(f"[Open and acknowledge]({self.url})")
        return "\n\n".join(part for part in parts if part)

    def plain_text(self) -> str:
        """Heading, body and link as plain text (Markdown markers left as typed)."""
        parts = [self.headline(), self.text]
        if self.url:
            parts.append(self.url)
        return "\n".join(part for part in parts if part)


def truncate_utf8(text: str, max_bytes: int, marker: str = "...") -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, on a character boundary."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    room = max_bytes - len(marker.encode("utf-8"))
    if room <= 0:
        raise ValueError(f"max_bytes={max_bytes} leaves no room for any text")
    return encoded[:room].decode("utf-8", errors="ignore") + marker
