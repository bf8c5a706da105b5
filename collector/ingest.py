"""Turn one MQTT message into line-protocol points and rejections. Pure: no I/O.

A message whose topic, size, JSON or envelope is wrong is rejected whole. Otherwise each
reading stands on its own: a bad reading is rejected with its reason and the good readings
of the same message are kept, as a meter bank's one faulty meter must not hide the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from common.contract import (
    READING,
    Channel,
    ContractError,
    EventMessage,
    Reading,
    StatusMessage,
    TelemetryEnvelope,
    TelemetryMessage,
    check_reading_time,
    parse_topic,
)
from common.schema import event_point, reading_line, status_point, to_millis


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    max_message_bytes: int
    max_readings_per_message: int
    max_future: timedelta
    max_age: timedelta


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    raw: bytes


@dataclass(slots=True)
class Decoded:
    """What one message yields; ``gateway``/``seq`` are set once the envelope was valid."""

    lines: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    gateway: str | None = None
    seq: int | None = None
    readings: int = 0
    events: int = 0
    message_rejected: bool = False

    def reject_message(self, reason: str, raw: bytes) -> Decoded:
        self.rejections.append(Rejection(reason, raw))
        self.message_rejected = True
        return self


def summarise(error: ValidationError, limit: int = 3) -> str:
    """A short, readable reason from a pydantic error: where and what, for the first few."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def decode(topic: str, payload: bytes, now: datetime, policy: IngestPolicy) -> Decoded:
    """Validate one message against the wire contract and build its points."""
    result = Decoded()
    if len(payload) > policy.max_message_bytes:
        return result.reject_message(
            f"oversized: {len(payload)} bytes > limit {policy.max_message_bytes}", payload
        )
    try:
        gateway, channel = parse_topic(topic)
    except ContractError as exc:
        return result.reject_message(f"topic: {exc}", payload)
    if channel is Channel.TELEMETRY:
        fast = _valid_telemetry(result, payload, gateway, now, policy)
        if fast is not None:
            return fast
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return result.reject_message(f"not JSON: {exc}", payload)
    except RecursionError as exc:
        # '[[[[...' a megabyte deep: refuse it, or it would come back on every reconnect.
        return result.reject_message(f"not JSON we accept: nested too deep ({exc})", payload)
    if not isinstance(document, dict):
        return result.reject_message("not a JSON object", payload)
    if document.get("gateway") != gateway:
        return result.reject_message(
            f"gateway mismatch: payload says {document.get('gateway')!r}, topic {gateway!r}",
            payload,
        )
    if channel is Channel.TELEMETRY:
        return _telemetry(result, payload, document, now, policy)
    if channel is Channel.EVENTS:
        return _events(result, payload, document, now, policy)
    if channel is Channel.STATUS:
        return _status(result, payload, document, now)
    return result.reject_message(f"channel {channel.value!r} is not collected", payload)


def _valid_telemetry(
    result: Decoded, payload: bytes, gateway: str, now: datetime, policy: IngestPolicy
) -> Decoded | None:
    """Fast path for the usual case, a valid message, checked whole by pydantic-core.

    None sends the message down the slow path, which finds and names what is wrong.
    """
    try:
        message = TelemetryMessage.model_validate_json(payload)
    except ValidationError:
        return None
    if message.gateway != gateway or len(message.readings) > policy.max_readings_per_message:
        return None
    result.gateway, result.seq = message.gateway, message.seq
    for index, reading in enumerate(message.readings):
        _add_reading(result, reading, index, payload, now, policy)
    return result


def _telemetry(
    result: Decoded, payload: bytes, document: dict, now: datetime, policy: IngestPolicy
) -> Decoded:
    readings = document.get("readings")
    if isinstance(readings, list) and len(readings) > policy.max_readings_per_message:
        return result.reject_message(
            f"too many readings: {len(readings)} > limit {policy.max_readings_per_message}",
            payload,
        )
    return _telemetry_reading_by_reading(result, payload, document, now, policy)


def _telemetry_reading_by_reading(
    result: Decoded, payload: bytes, document: dict, now: datetime, policy: IngestPolicy
) -> Decoded:
    try:
        envelope = TelemetryEnvelope.model_validate(document)
    except ValidationError as exc:
        return result.reject_message(f"envelope: {summarise(exc)}", payload)
    result.gateway, result.seq = envelope.gateway, envelope.seq
    for index, raw_reading in enumerate(envelope.readings):
        try:
            reading = READING.validate_python(raw_reading)
        except ValidationError as exc:
            result.rejections.append(
                Rejection(f"reading {index}: {summarise(exc)}", _dump(raw_reading))
            )
            continue
        _add_reading(result, reading, index, envelope.readings, now, policy)
    return result


def _time_refusal(taken_at: datetime, now: datetime, policy: IngestPolicy) -> str:
    """Why a device timestamp is refused, or "" when it is within the window."""
    try:
        check_reading_time(taken_at, now, max_future=policy.max_future, max_age=policy.max_age)
    except ContractError as exc:
        return str(exc)
    return ""


def _add_reading(
    result: Decoded, reading: Reading, index: int, raw: bytes | list[dict[str, Any]],
    now: datetime, policy: IngestPolicy,
) -> None:
    refusal = _time_refusal(reading.time, now, policy)
    if refusal:
        kept = raw[index] if isinstance(raw, list) else reading.model_dump(mode="json")
        result.rejections.append(Rejection(f"reading {index}: {refusal}", _dump(kept)))
        return
    result.lines.append(reading_line(reading, result.gateway or ""))
    result.readings += 1


def _events(
    result: Decoded, payload: bytes, document: dict, now: datetime, policy: IngestPolicy
) -> Decoded:
    try:
        message = EventMessage.model_validate(document)
    except ValidationError as exc:
        return result.reject_message(f"event message: {summarise(exc)}", payload)
    result.gateway, result.seq = message.gateway, message.seq
    for index, event in enumerate(message.events):
        refusal = _time_refusal(event.time, now, policy)
        if refusal:
            result.rejections.append(
                Rejection(f"event {index}: {refusal}", event.model_dump_json().encode())
            )
            continue
        result.lines.append(event_point(event, message.gateway).to_line())
        result.events += 1
    return result


def _status(result: Decoded, payload: bytes, document: dict, now: datetime) -> Decoded:
    try:
        status = StatusMessage.model_validate(document)
    except ValidationError as exc:
        return result.reject_message(f"status: {summarise(exc)}", payload)
    result.gateway = status.gateway
    result.lines.append(status_point(status, to_millis(now)).to_line())
    return result


def _dump(raw: object) -> bytes:
    try:
        return json.dumps(raw, allow_nan=True).encode()
    except (TypeError, ValueError):
        return repr(raw).encode()
