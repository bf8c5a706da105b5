"""The collector's counters, shared by the MQTT thread, the writer and the health server."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass
class Counters:
    messages_in: int = 0
    readings_in: int = 0
    events_in: int = 0
    status_in: int = 0
    invalid_messages: int = 0
    invalid_readings: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    gaps: int = 0
    points_written: int = 0
    batches_written: int = 0
    rejected_points: int = 0
    write_failures: int = 0
    spooled_batches: int = 0
    spool_full_waits: int = 0
    handler_errors: int = 0
    subscriptions_refused: int = 0
    lag_last_s: float = 0.0
    lag_max_s: float = 0.0


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters = Counters()

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self._counters, name, getattr(self._counters, name) + value)

    def count_message(self, *, readings: int, events: int, rejections: int,
                      message_rejected: bool) -> None:
        """One received message: the hot path, so not through add()'s keyword loop."""
        with self._lock:
            counters = self._counters
            counters.messages_in += 1
            counters.readings_in += readings
            counters.events_in += events
            counters.dead_letters += rejections
            if message_rejected:
                counters.invalid_messages += 1
            else:
                counters.invalid_readings += rejections

    def set(self, **values: int) -> None:
        with self._lock:
            for name, value in values.items():
                setattr(self._counters, name, value)

    def observe_lag(self, seconds: float) -> None:
        with self._lock:
            self._counters.lag_last_s = seconds
            self._counters.lag_max_s = max(self._counters.lag_max_s, seconds)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return asdict(self._counters)
