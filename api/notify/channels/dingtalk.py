"""DingTalk (钉钉) custom group robot: ``POST .../robot/send?access_token=<token>``.

With the robot's "signature" security setting, every request adds ``timestamp`` (Unix ms)
and ``sign`` = Base64(HMAC-SHA256(key=secret, "<timestamp>\\n<secret>")) as query
parameters; DingTalk refuses a timestamp more than an hour from its clock. With the
"custom keyword" setting the text must contain the keyword: set ``keyword`` and it is put in
front of the title when missing. Mentions: ``at.atMobiles`` / ``at.atUserIds``, and the
mobile must also appear in the text as ``@<mobile>`` for markdown messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Final, Literal

from pydantic import Field, SecretStr

from api.notify.channels.base import (
    Channel,
    JsonObject,
    OutgoingRequest,
    Rejection,
    json_bytes,
    robot_rejection,
)
from api.notify.message import Notice, truncate_utf8

MAX_BYTES: Final = 20_000
#: sending too fast (130101); system busy (-1)
RETRYABLE_ERRCODES: Final = frozenset({130101, -1})


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` parameter (Base64, before URL encoding) for ``timestamp_ms``."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _with_keyword(notice: Notice, keyword: str | None) -> tuple[str, str]:
    """Title and Markdown text, the keyword put in front of the title when it is missing."""
    title = notice.headline()
    if keyword and keyword not in notice.markdown():
        title = f"{keyword} {title}"
    return title, notice.markdown(heading=title)


def build_payload(notice: Notice, msgtype: Literal["markdown", "text"],
                  keyword: str | None = None) -> JsonObject:
    """The robot's JSON for ``notice`` as a ``markdown`` or a ``text`` message."""
    mentions = " ".join(f"@{mobile}" for mobile in notice.mention_mobiles)
    at: JsonObject = {"atMobiles": list(notice.mention_mobiles),
                      "atUserIds": list(notice.mention_user_ids), "isAtAll": False}
    if msgtype == "markdown":
        title, text = _with_keyword(notice, keyword)
        if mentions:
            text = f"{text}\n\n{mentions}"
        return {"msgtype": "markdown",
                "markdown": {"title": title, "text": truncate_utf8(text, MAX_BYTES)},
                "at": at}
    content = notice.plain_text()
    if keyword and keyword not in content:
        content = f"{keyword} {content}"
    if mentions:
        content = f"{content}\n{mentions}"
    return {"msgtype": "text", "text": {"content": truncate_utf8(content, MAX_BYTES)},
            "at": at}


class DingTalkChannel(Channel):
    type: Literal["dingtalk"] = "dingtalk"
    msgtype: Literal["markdown", "text"] = "markdown"
    secret: SecretStr | None = Field(default=None, description="the robot's SEC... signing key")
    keyword: str | None = Field(default=None, description="the robot's custom keyword, if set")

    def payload(self, notice: Notice) -> JsonObject:
        return build_payload(notice, self.msgtype, self.keyword)

    def prepare(self, notice: Notice, now: datetime) -> OutgoingRequest:
        params: dict[str, str] = {}
        if self.secret is not None:
            timestamp_ms = int(now.timestamp() * 1000)
            params = {"timestamp": str(timestamp_ms),
                      "sign": sign(self.secret.get_secret_value(), timestamp_ms)}
        return OutgoingRequest(url=self.url, content=json_bytes(self.payload(notice)),
                               params=params,
                               headers={"Content-Type": "application/json; charset=utf-8"})

    def rejection(self, body: object) -> Rejection | None:
        return robot_rejection(body, RETRYABLE_ERRCODES)
