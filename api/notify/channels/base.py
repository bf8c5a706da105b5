"""What every channel plugin provides: a pure payload builder and a request to send."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.notify.message import Notice

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class OutgoingRequest:
    """One HTTP POST, fully formed: the sender adds nothing but transport."""

    url: str
    content: bytes
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """A receiver answered HTTP 200 yet refused the message (robot ``errcode`` != 0)."""

    message: str
    retryable: bool


def json_bytes(payload: JsonObject) -> bytes:
    """Compact UTF-8 JSON, Chinese text kept as it is (robots count bytes of UTF-8)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Channel(BaseModel):
    """Configuration of one destination; subclasses add ``type`` and their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="the webhook address, including any key or access token")

    def payload(self, notice: Notice) -> JsonObject:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, notice: Notice, now: datetime) -> OutgoingRequest:
        """The request that delivers ``notice``; ``now`` matters to signed channels."""
        return OutgoingRequest(url=self.url, content=json_bytes(self.payload(notice)),
                               headers={"Content-Type": "application/json; charset=utf-8"})

    def rejection(self, body: object) -> Rejection | None:
        """Whether a 2xx answer still refused the message; plain webhooks never do."""
        return None


def robot_rejection(body: object, retryable_codes: frozenset[int]) -> Rejection | None:
    """The WeCom/DingTalk answer ``{"errcode": 0, "errmsg": "ok"}`` read as accepted or not."""
    if not isinstance(body, dict):
        return Rejection(message=f"unexpected answer {body!r}", retryable=True)
    code = body.get("errcode")
    if code == 0:
        return None
    retryable = isinstance(code, int) and code in retryable_codes
    return Rejection(message=f"errcode {code}: {body.get('errmsg', '')}", retryable=retryable)
