"""The on-disk outbox: sequence numbers, grouping, persistence, acknowledgement, bound policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.contract import (
    Channel,
    DeviceEvent,
    EventMessage,
    MeterReading,
    TelemetryMessage,
)
from gateway.outbox import Outbox

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def readings(count: int, start: int = 0) -> list[MeterReading]:
    return [MeterReading(device=f"m-{i % 7:04d}", time=T0 + timedelta(seconds=i), village="v01",
                         volume_m3=float(i), valve="open")
            for i in range(start, start + count)]


def event(code: str = "valve_closed") -> DeviceEvent:
    return DeviceEvent(device="m-0001", device_kind="meter", time=T0, village="v01", code=code)


def open_outbox(path: Path, max_bytes: int = 10_000_000) -> Outbox:
    return Outbox(path / "outbox.sqlite3", "gw-test", max_bytes=max_bytes,
                  readings_per_message=60)


def test_readings_are_grouped_60_a_message_and_share_one_sequence_with_events(
        tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    outbox.put_readings(readings(130))
    outbox.put_events([event(), event("low_battery")])
    outbox.put_readings(readings(5, start=130))
    rows = outbox.after(-1, 100)
    assert [row.seq for row in rows] == [0, 1, 2, 3, 4]
    assert [row.channel for row in rows] == [Channel.TELEMETRY] * 3 + [
        Channel.EVENTS, Channel.TELEMETRY]
    telemetry = [TelemetryMessage.model_validate_json(r.payload) for r in rows
                 if r.channel is Channel.TELEMETRY]
    assert [len(m.readings) for m in telemetry] == [60, 60, 10, 5]
    assert [r.volume_m3 for m in telemetry for r in m.readings] == [float(i) for i in range(135)]
    events = EventMessage.model_validate_json(rows[3].payload)
    assert events.seq == 3 and events.gateway == "gw-test" and len(events.events) == 2
    assert outbox.after(2, 1)[0].seq == 3
    outbox.close()


def test_sequence_continues_after_a_restart_even_when_every_row_was_acknowledged(
        tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    outbox.put_readings(readings(120))
    outbox.ack([0, 1])
    assert outbox.waiting == 0
    outbox.close()
    reopened = open_outbox(tmp_path)
    reopened.put_events([event()])
    assert [row.seq for row in reopened.after(-1, 10)] == [2]
    reopened.close()


def test_only_acknowledged_rows_leave_and_unacknowledged_ones_survive_a_restart(
        tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    outbox.put_readings(readings(60 * 5))
    sent = {row.seq: row.payload for row in outbox.after(-1, 10)}
    outbox.ack([1, 3, 99])  # 99 never existed: ignored
    assert outbox.snapshot()["acked_messages"] == 2
    stored = outbox.stored_bytes
    outbox.close()
    reopened = open_outbox(tmp_path)
    rows = reopened.after(-1, 10)
    assert [row.seq for row in rows] == [0, 2, 4]
    assert all(row.payload == sent[row.seq] for row in rows)  # read back from disk as sent
    assert reopened.waiting == 3 and reopened.stored_bytes == stored
    reopened.close()


def test_full_outbox_drops_the_oldest_routine_telemetry_and_never_events(tmp_path: Path) -> None:
    probe = open_outbox(tmp_path / "probe")
    probe.put_readings(readings(60))
    message_bytes = probe.stored_bytes
    probe.close()
    # Room for about four telemetry messages.
    outbox = open_outbox(tmp_path, max_bytes=message_bytes * 4 + message_bytes // 2)
    outbox.put_events([event("tamper")])                   # seq 0
    for batch in range(8):                                 # seqs 1..8, interleaved with events
        outbox.put_readings(readings(60, start=batch * 60))
        if batch == 3:
            outbox.put_events([event("low_battery")])      # seq 5
    rows = outbox.after(-1, 100)
    seqs = {row.channel: [r.seq for r in rows if r.channel is row.channel] for row in rows}
    assert seqs[Channel.EVENTS] == [0, 5]
    # Newest telemetry kept, oldest gone, order kept.
    assert seqs[Channel.TELEMETRY] == sorted(seqs[Channel.TELEMETRY])
    assert seqs[Channel.TELEMETRY][-1] == 9
    assert 1 not in seqs[Channel.TELEMETRY]
    assert outbox.stored_bytes <= outbox.max_bytes
    dropped = outbox.snapshot()
    assert dropped["dropped_messages"] == 8 - len(seqs[Channel.TELEMETRY])
    assert dropped["dropped_readings"] == 60 * dropped["dropped_messages"]
    outbox.close()


def test_events_are_stored_past_the_bound_and_new_telemetry_yields_to_them(
        tmp_path: Path) -> None:
    probe = open_outbox(tmp_path / "probe")
    probe.put_events([event("code0")])
    event_bytes = probe.stored_bytes
    probe.close()
    outbox = open_outbox(tmp_path, max_bytes=event_bytes * 2 + event_bytes // 2)
    for number in range(4):
        outbox.put_events([event(f"code{number}")])
    assert outbox.stored_bytes > outbox.max_bytes
    outbox.put_readings(readings(3))
    rows = outbox.after(-1, 100)
    assert [row.channel for row in rows] == [Channel.EVENTS] * 4
    snapshot = outbox.snapshot()
    assert snapshot["dropped_messages"] == 1 and snapshot["dropped_readings"] == 3
    assert snapshot["events_over_bound"] >= 1
    # The dropped message still used its number: the consumer sees the gap.
    outbox.put_events([event("after")])
    assert json.loads(outbox.after(3, 1)[0].payload)["seq"] == 5
    outbox.close()
