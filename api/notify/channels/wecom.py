"""WeCom (企业微信) group robot: ``POST .../cgi-bin/webhook/send?key=<key>``.

``markdown`` messages render headings, bold and links but cannot @-mention by mobile
(``<@userid>`` in the text works); ``text`` messages carry ``mentioned_list`` and
``mentioned_mobile_list``. Limits: text 2048 bytes, markdown 4096 bytes of UTF-8, 20
messages a minute per robot (errcode 45009 when exceeded).
"""

from __future__ import annotations

from typing import Final, Literal

from api.notify.channels.base import Channel, JsonObject, Rejection, robot_rejection
from api.notify.message import Notice, truncate_utf8

TEXT_MAX_BYTES: Final = 2048
MARKDOWN_MAX_BYTES: Final = 4096
#: api freq out of limit; system busy
RETRYABLE_ERRCODES: Final = frozenset({45009, -1})


def build_payload(notice: Notice, msgtype: Literal["markdown", "text"]) -> JsonObject:
    """The robot's JSON for ``notice`` as a ``markdown`` or a ``text`` message."""
    if msgtype == "markdown":
        mentions = "".join(f"<@{user}>" for user in notice.mention_user_ids)
        content = notice.markdown() + (f"\n\n{mentions}" if mentions else "")
        return {"msgtype": "markdown",
                "markdown": {"content": truncate_utf8(content, MARKDOWN_MAX_BYTES)}}
    text: JsonObject = {"content": truncate_utf8(notice.plain_text(), TEXT_MAX_BYTES)}
    if notice.mention_user_ids:
        text["mentioned_list"] = list(notice.mention_user_ids)
    if notice.mention_mobiles:
        text["mentioned_mobile_list"] = list(notice.mention_mobiles)
    return {"msgtype": "text", "text": text}


class WeComChannel(Channel):
    type: Literal["wecom"] = "wecom"
    msgtype: Literal["markdown", "text"] = "markdown"

    def payload(self, notice: Notice) -> JsonObject:
        return build_payload(notice, self.msgtype)

    def rejection(self, body: object) -> Rejection | None:
        return robot_rejection(body, RETRYABLE_ERRCODES)
