"""Generic JSON webhook: the notice as a JSON object, optionally HMAC-signed.

With ``secret`` set, the request carries ``X-Ruralwater-Timestamp`` (Unix seconds) and
``X-Ruralwater-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` so the receiver
can check origin and freshness (the scheme GitHub and Stripe webhooks use).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr

from api.notify.channels.base import Channel, JsonObject, OutgoingRequest, json_bytes
from api.notify.message import Notice

SIGNATURE_HEADER = "X-Ruralwater-Signature"
TIMESTAMP_HEADER = "X-Ruralwater-Timestamp"


def build_payload(notice: Notice) -> JsonObject:
    """The notice as a flat JSON object (schema documented in api/notify/README.md)."""
    return {
        "subject": notice.subject,
        "title": notice.title,
        "headline": notice.headline(),
        "text": notice.text,
        "severity": notice.severity.value,
        "audience": notice.audience,
        "reason": notice.reason.value,
        "reminder_number": notice.reminder_number,
        "url": notice.url,
    }


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel(Channel):
    type: Literal["webhook"] = "webhook"
    secret: SecretStr | None = Field(default=None, description="HMAC key shared with receiver")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")

    def payload(self, notice: Notice) -> JsonObject:
        return build_payload(notice)

    def prepare(self, notice: Notice, now: datetime) -> OutgoingRequest:
        body = json_bytes(self.payload(notice))
        headers = {"Content-Type": "application/json; charset=utf-8", **self.headers}
        if self.secret is not None:
            timestamp = int(now.timestamp())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = signature(self.secret.get_secret_value(), timestamp,
                                                  body)
        return OutgoingRequest(url=self.url, content=body, headers=headers)
