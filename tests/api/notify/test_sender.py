"""Delivery to a real local HTTP server: what arrives, retries, and what is not retried."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from api.notify.channels import DingTalkChannel, WebhookChannel, WeComChannel
from api.notify.message import Notice
from api.notify.sender import RetryPolicy, WebhookSender

from .recorder import Answer, RecordingServer

NOW = datetime.fromtimestamp(1_700_000_000, UTC)
NOTICE = Notice(subject="ticket:7", title="Pump fault at v002", text="Drive fault code 17.")


def test_webhook_arrives_with_its_json_body_and_headers(recorder: RecordingServer,
                                                        sender: WebhookSender) -> None:
    channel = WebhookChannel(url=f"{recorder.url}/hooks/ruralwater")
    result = sender.send(channel, channel.prepare(NOTICE, NOW))
    assert (result.ok, result.attempts, result.status_code) == (True, 1, 200)
    [request] = recorder.requests
    assert request.path == "/hooks/ruralwater"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.json() == channel.payload(NOTICE)


def test_dingtalk_sign_arrives_url_encoded_and_verifies_at_the_receiver(
        recorder: RecordingServer, sender: WebhookSender) -> None:
    secret = "SEC0123456789abcdef+/="
    channel = DingTalkChannel(url=f"{recorder.url}/robot/send?access_token=tok",
                              secret=SecretStr(secret))
    assert sender.send(channel, channel.prepare(NOTICE, NOW)).ok
    [request] = recorder.requests
    assert request.query["access_token"] == "tok"
    timestamp = request.query["timestamp"]
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert request.query["sign"] == expected  # parse_qs decoded what httpx encoded


def test_a_500_is_retried_with_backoff_until_accepted(recorder: RecordingServer,
                                                      sender: WebhookSender,
                                                      pauses: list[float]) -> None:
    recorder.script.extend([Answer(500, {"error": "boom"}), Answer(503, None)])
    channel = WeComChannel(url=f"{recorder.url}/cgi-bin/webhook/send?key=k")
    result = sender.send(channel, channel.prepare(NOTICE, NOW))
    assert (result.ok, result.attempts) == (True, 3)
    assert len(recorder.requests) == 3
    assert recorder.requests[0].body == recorder.requests[2].body
    assert pauses == [0.5, 1.0]


def test_retries_give_up_after_the_configured_attempts(recorder: RecordingServer,
                                                       sender: WebhookSender) -> None:
    recorder.default = Answer(502, None)
    channel = WebhookChannel(url=recorder.url)
    result = sender.send(channel, channel.prepare(NOTICE, NOW))
    assert (result.ok, result.attempts, result.status_code) == (False, 3, 502)
    assert result.error == "HTTP 502"


def test_a_client_error_is_not_retried(recorder: RecordingServer,
                                       sender: WebhookSender) -> None:
    recorder.script.append(Answer(404, None))
    channel = WebhookChannel(url=recorder.url)
    result = sender.send(channel, channel.prepare(NOTICE, NOW))
    assert (result.ok, result.attempts, result.status_code) == (False, 1, 404)


def test_robot_throttling_is_retried_and_a_bad_key_is_not(recorder: RecordingServer,
                                                         sender: WebhookSender) -> None:
    channel = WeComChannel(url=recorder.url)
    recorder.script.append(Answer(200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    assert sender.send(channel, channel.prepare(NOTICE, NOW)).attempts == 2
    recorder.script.append(Answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"}))
    result = sender.send(channel, channel.prepare(NOTICE, NOW))
    assert (result.ok, result.attempts) == (False, 1)
    assert result.error == "errcode 93000: invalid webhook url"


def test_retry_after_is_honoured_within_the_maximum_delay(recorder: RecordingServer,
                                                          http_client: httpx.Client) -> None:
    pauses: list[float] = []
    sender = WebhookSender(http_client, RetryPolicy(attempts=3, initial_delay_s=0.1,
                                                    max_delay_s=5.0), sleep=pauses.append)
    recorder.script.extend([Answer(429, None, (("Retry-After", "3"),)),
                            Answer(429, None, (("Retry-After", "60"),))])
    channel = WebhookChannel(url=recorder.url)
    assert sender.send(channel, channel.prepare(NOTICE, NOW)).ok
    assert pauses == [3.0, 5.0]


def test_an_unreachable_receiver_is_retried_and_reported(sender: WebhookSender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = WebhookChannel(url=f"http://127.0.0.1:{port}/hook")
    result = sender.send(channel, channel.prepare(NOTICE, NOW))
    assert (result.ok, result.attempts, result.status_code) == (False, 3, None)
    assert result.error is not None and "ConnectError" in result.error
