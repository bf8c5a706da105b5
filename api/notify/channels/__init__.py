"""Notification channels, one small plugin per receiver format (Telegraf-style).

Each plugin is a frozen pydantic model holding its configuration, with a pure ``payload``
(the JSON the receiver expects), ``prepare`` (the full request, signed where the receiver
wants it) and ``rejection`` (reading a 2xx answer that still refused the message). Add a
format by writing a module with a ``Channel`` subclass and listing it in ``AnyChannel``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.notify.channels.base import Channel, OutgoingRequest, Rejection
from api.notify.channels.dingtalk import DingTalkChannel
from api.notify.channels.webhook import WebhookChannel
from api.notify.channels.wecom import WeComChannel

AnyChannel = Annotated[WebhookChannel | WeComChannel | DingTalkChannel,
                       Field(discriminator="type")]

__all__ = ["AnyChannel", "Channel", "DingTalkChannel", "OutgoingRequest", "Rejection",
           "WeComChannel", "WebhookChannel"]
