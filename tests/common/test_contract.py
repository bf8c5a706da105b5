"""The wire contract accepts what gateways send and refuses what they must not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from common.contract import (
    READING,
    Channel,
    ContractError,
    MeterReading,
    TelemetryEnvelope,
    TelemetryMessage,
    check_reading_time,
    parse_topic,
    subscription,
    topic,
)

NOW = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)


def meter(**overrides: object) -> dict[str, object]:
    reading: dict[str, object] = {
        "kind": "meter", "device": "78330011223344", "time": NOW.isoformat(),
        "village": "v001", "dma": "dma-v001", "volume_m3": 123.45, "valve": "open",
    }
    return reading | overrides


def test_topic_round_trips_with_gateway_at_fixed_level() -> None:
    name = topic("gw-v001", Channel.TELEMETRY)
    assert name == "ruralwater/v1/gw-v001/telemetry"
    assert parse_topic(name) == ("gw-v001", Channel.TELEMETRY)


@pytest.mark.parametrize(
    "bad", ["ruralwater/v1/gw/unknown", "other/v1/gw/telemetry", "ruralwater/v1/telemetry", ""]
)
def test_foreign_topics_are_refused(bad: str) -> None:
    with pytest.raises(ContractError):
        parse_topic(bad)


def test_shared_subscription_filter() -> None:
    assert subscription(Channel.EVENTS, "collectors") == (
        "$share/collectors/ruralwater/v1/+/events"
    )
    assert subscription(Channel.EVENTS) == "ruralwater/v1/+/events"


def test_telemetry_message_serialises_and_parses_back() -> None:
    message = TelemetryMessage(
        gateway="gw-v001", seq=7, sent_at=NOW, readings=[READING.validate_python(meter())]
    )
    wire = message.model_dump_json()
    again = TelemetryMessage.model_validate_json(wire)
    assert again == message
    assert json.loads(wire)["schema_version"] == 1


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"volume_m3": float("nan")}, "finite"),
        ({"volume_m3": float("inf")}, "finite"),
        ({"volume_m3": -1.0}, "greater than or equal"),
        ({"volume_m3": "lots"}, "valid number"),
        ({"valve": "ajar"}, "open"),
        ({"kind": "toaster"}, "does not match any of the expected tags"),
        ({"time": "2026-07-01T03:00:00"}, "timezone"),
        ({"device": "a/b"}, "pattern"),
        ({"unexpected": 1}, "Extra inputs"),
    ],
)
def test_bad_readings_are_refused_with_a_reason(
    overrides: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        READING.validate_python(meter(**overrides))
    assert fragment in str(caught.value)


def test_quality_reading_needs_a_parameter() -> None:
    with pytest.raises(ValidationError, match="at least one parameter"):
        READING.validate_python(
            {"kind": "quality", "device": "aq-1", "time": NOW.isoformat(), "village": "v001"}
        )


def test_envelope_refuses_a_newer_schema_version() -> None:
    with pytest.raises(ValidationError, match="schema_version"):
        TelemetryEnvelope.model_validate(
            {"schema_version": 2, "gateway": "gw-v001", "seq": 1, "sent_at": NOW.isoformat(),
             "readings": [meter()]}
        )


def test_reading_time_window() -> None:
    window = {"max_future": timedelta(hours=1), "max_age": timedelta(days=400)}
    check_reading_time(NOW, NOW, **window)
    with pytest.raises(ContractError, match="ahead"):
        check_reading_time(NOW + timedelta(hours=2), NOW, **window)
    with pytest.raises(ContractError, match="old"):
        check_reading_time(datetime(1970, 1, 1, tzinfo=UTC), NOW, **window)


def test_meter_reading_defaults_are_healthy() -> None:
    reading = MeterReading.model_validate(meter())
    assert not reading.battery_low and not reading.tamper and reading.status == 0
