"""The collector's pure parts on their own: decoding hostile bytes, sequence bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.ingest import IngestPolicy, decode
from collector.sequence import SequenceTracker

POLICY = IngestPolicy(max_message_bytes=1 << 20, max_readings_per_message=5000,
                      max_future=timedelta(hours=1), max_age=timedelta(days=400))


def test_json_nested_too_deep_is_refused_not_raised() -> None:
    for channel, payload in (("telemetry", b"[" * 200_000), ("events", b'{"a":' * 100_000)):
        decoded = decode(f"ruralwater/v1/gw-a/{channel}", payload, datetime.now(UTC), POLICY)
        assert decoded.message_rejected and decoded.lines == []
        assert "nested too deep" in decoded.rejections[0].reason


def test_sequence_late_arrival_fills_its_gap_and_a_counter_reset_is_not_a_duplicate() -> None:
    tracker = SequenceTracker()
    verdicts = [tracker.observe("gw-a", seq) for seq in (10, 11, 14, 12, 12)]
    assert verdicts == ["new", "new", "new", "late", "duplicate"]
    assert (tracker.gaps, tracker.duplicates) == (1, 1)  # 13 is still missing
    # The gateway lost its counter (flash wiped) and starts over far below: not duplicates.
    for seq in range(20_000, 20_010):
        tracker.observe("gw-b", seq)
    assert tracker.observe("gw-b", 0) == "restart"
    assert tracker.observe("gw-b", 1) == "new"
    assert tracker.duplicates == 1 and tracker.snapshot()["gw-b"]["highest_seq"] == 1
