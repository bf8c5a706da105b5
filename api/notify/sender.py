"""Deliver prepared requests over HTTP with timeouts and bounded, backed-off retries.

The ``httpx.Client`` is built outside (``make_client``) and passed in, so tests hand it a
client for a local server and the application shares one connection pool.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field

from api.notify.channels.base import Channel, OutgoingRequest

logger = logging.getLogger(__name__)

#: statuses worth another try: throttled, or the receiver's side failed
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetryPolicy(BaseModel):
    """How often and how patiently to try one delivery (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=4, ge=1, description="tries in all, the first included")
    initial_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=10.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)

    def delay_before(self, attempt: int) -> float:
        """Pause before try number ``attempt`` (2, 3, ...), seconds."""
        return min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 2))


def make_client(timeout_s: float = 10.0, connect_timeout_s: float = 5.0) -> httpx.Client:
    """A client with explicit timeouts (httpx's default of 5 s everywhere is too short to
    read a slow robot API yet too long to wait for a dead host)."""
    return httpx.Client(timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
                        follow_redirects=False)


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one delivery after all its tries."""

    ok: bool
    attempts: int
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class _Try:
    ok: bool
    retryable: bool
    status_code: int | None
    error: str | None
    retry_after_s: float | None = None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _read_body(response: httpx.Response) -> object:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text


class WebhookSender:
    """Posts ``OutgoingRequest``s; retries transport errors, 408/429/5xx and robot throttling.

    ``sleep`` is injectable so a scheduler can wait differently; it defaults to
    ``time.sleep``.
    """

    def __init__(self, client: httpx.Client, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def send(self, channel: Channel, request: OutgoingRequest) -> DeliveryResult:
        """Deliver ``request`` for ``channel``; never raises for delivery failures."""
        outcome = _Try(ok=False, retryable=False, status_code=None, error="not tried")
        for attempt in range(1, self._retry.attempts + 1):
            if attempt > 1:
                delay = self._retry.delay_before(attempt)
                if outcome.retry_after_s is not None:
                    delay = min(max(delay, outcome.retry_after_s), self._retry.max_delay_s)
                self._sleep(delay)
            outcome = self._try_once(channel, request)
            if outcome.ok or not outcome.retryable:
                return DeliveryResult(outcome.ok, attempt, outcome.status_code, outcome.error)
            logger.warning("delivery to %s failed (try %d of %d): %s", _redacted(request.url),
                           attempt, self._retry.attempts, outcome.error)
        return DeliveryResult(False, self._retry.attempts, outcome.status_code, outcome.error)

    def _try_once(self, channel: Channel, request: OutgoingRequest) -> _Try:
        try:
            # merge, not replace: robot URLs already carry their key or access token
            url = httpx.URL(request.url).copy_merge_params(request.params)
            response = self._client.post(url, content=request.content,
                                         headers=request.headers)
        except httpx.TransportError as exc:
            return _Try(False, True, None, f"{type(exc).__name__}: {exc}")
        if response.status_code >= 300:
            return _Try(False, response.status_code in RETRYABLE_STATUSES,
                        response.status_code, f"HTTP {response.status_code}",
                        _retry_after(response))
        rejection = channel.rejection(_read_body(response))
        if rejection is not None:
            return _Try(False, rejection.retryable, response.status_code, rejection.message)
        return _Try(True, False, response.status_code, None)


def _redacted(url: str) -> str:
    """The URL without its query string: robot keys and tokens live there."""
    return url.split("?", 1)[0]
