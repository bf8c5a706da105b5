"""Channel payloads against golden JSON (checked by eye against the robots' documentation),
DingTalk and webhook signatures against values computed with the openssl CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.notify.channels import DingTalkChannel, WebhookChannel, WeComChannel, dingtalk, wecom
from api.notify.channels import webhook as webhook_channel
from api.notify.message import Notice, NoticeReason, NoticeSeverity, truncate_utf8

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime.fromtimestamp(1_700_000_000, UTC)


@pytest.fixture
def notice() -> Notice:
    return Notice(subject="ticket:42", title="漏水 Leak in DMA dma-v003",
                  text="Night flow **2.4 m3/h** above baseline 0.6 m3/h.\n\n"
                       "- village: v003\n- SLA: 24 h",
                  severity=NoticeSeverity.CRITICAL, url="http://api.example/crew/tickets/42",
                  audience="crew", reason=NoticeReason.REMINDER, reminder_number=2,
                  mention_mobiles=("13800001111",), mention_user_ids=("zhangsan",))


def golden(name: str) -> object:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("channel", "name"), [
    (WebhookChannel(url="http://x"), "webhook"),
    (WeComChannel(url="http://x", msgtype="markdown"), "wecom_markdown"),
    (WeComChannel(url="http://x", msgtype="text"), "wecom_text"),
    (DingTalkChannel(url="http://x", msgtype="markdown", keyword="供水"), "dingtalk_markdown"),
    (DingTalkChannel(url="http://x", msgtype="text"), "dingtalk_text"),
])
def test_payload_matches_its_golden_file(channel: WebhookChannel | WeComChannel |
                                         DingTalkChannel, name: str, notice: Notice) -> None:
    assert channel.payload(notice) == golden(name)


def test_prepared_body_is_compact_utf8_json_of_the_payload(notice: Notice) -> None:
    request = WeComChannel(url="http://x").prepare(notice, NOW)
    assert "漏水".encode() in request.content
    assert json.loads(request.content) == golden("wecom_markdown")


def test_dingtalk_sign_matches_openssl() -> None:
    # printf '%s\n%s' 1700000000000 SECtestsecret \
    #   | openssl dgst -sha256 -hmac SECtestsecret -binary | base64
    assert dingtalk.sign("SECtestsecret", 1_700_000_000_000) == \
        "7LVwF0dAF3/+MRRulbpE4y72Ogzykc6bS2nG4I99T4s="


def test_dingtalk_with_a_secret_adds_timestamp_and_sign_parameters(notice: Notice) -> None:
    channel = DingTalkChannel(url="http://x/robot/send?access_token=t",
                              secret=SecretStr("SECtestsecret"))
    request = channel.prepare(notice, NOW)
    assert request.params == {"timestamp": "1700000000000",
                              "sign": "7LVwF0dAF3/+MRRulbpE4y72Ogzykc6bS2nG4I99T4s="}


def test_dingtalk_without_a_secret_sends_no_sign(notice: Notice) -> None:
    assert DingTalkChannel(url="http://x").prepare(notice, NOW).params == {}


def test_dingtalk_keyword_already_in_the_text_is_not_added_again(notice: Notice) -> None:
    payload = dingtalk.build_payload(notice, "markdown", keyword="Leak")
    assert payload["markdown"]["title"] == "[Reminder 2] 漏水 Leak in DMA dma-v003"


def test_webhook_signature_matches_openssl() -> None:
    # printf '%s.%s' 1700000000 '{"a":1}' | openssl dgst -sha256 -hmac whsecret
    assert webhook_channel.signature("whsecret", 1_700_000_000, b'{"a":1}') == \
        "sha256=15d410d1cdb353b5e77d15b79f2cf9b142f784abbc3bbf7654676b96d67b9494"


def test_signed_webhook_carries_timestamp_and_signature_of_its_body(notice: Notice) -> None:
    channel = WebhookChannel(url="http://x", secret=SecretStr("whsecret"),
                             headers={"X-Tenant": "county-1"})
    request = channel.prepare(notice, NOW)
    assert request.headers["X-Ruralwater-Timestamp"] == "1700000000"
    assert request.headers["X-Ruralwater-Signature"] == webhook_channel.signature(
        "whsecret", 1_700_000_000, request.content)
    assert request.headers["X-Tenant"] == "county-1"


def test_wecom_text_is_cut_to_2048_bytes_on_a_character_boundary() -> None:
    long_notice = Notice(subject="s", title="缺水", text="水" * 2000)
    content = wecom.build_payload(long_notice, "text")["text"]["content"]
    assert len(content.encode("utf-8")) <= wecom.TEXT_MAX_BYTES
    assert content.endswith("...")


def test_truncate_keeps_short_text_and_refuses_a_limit_below_the_marker() -> None:
    assert truncate_utf8("abc", 3) == "abc"
    with pytest.raises(ValueError, match="no room"):
        truncate_utf8("abcdef", 2)


def test_robot_answers_are_read_as_accepted_refused_or_throttled() -> None:
    channel = WeComChannel(url="http://x")
    assert channel.rejection({"errcode": 0, "errmsg": "ok"}) is None
    throttled = channel.rejection({"errcode": 45009, "errmsg": "api freq out of limit"})
    assert throttled is not None and throttled.retryable
    bad_key = channel.rejection({"errcode": 93000, "errmsg": "invalid webhook url"})
    assert bad_key is not None and not bad_key.retryable
    assert WebhookChannel(url="http://x").rejection("anything") is None
