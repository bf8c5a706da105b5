"""The gateway's store-and-forward outbox: contract messages on disk until the broker acks them.

A :class:`ReadingSink` (``gateway/sink.py``): pollers hand it readings and events; it wraps
them in :class:`~common.contract.TelemetryMessage` (up to ``readings_per_message`` readings
each) and :class:`~common.contract.EventMessage` envelopes, gives each message the next
per-gateway sequence number (one counter for both channels, persisted with the message in the
same transaction, so a restart continues it), and stores the serialised payload in SQLite.

The uplink reads rows in sequence order (:meth:`Outbox.after`) and deletes a row only when the
broker has acknowledged it (:meth:`Outbox.ack`).

Payloads are stored zlib-compressed; the recent ones are also kept in memory as sent.

Bound policy: at most ``max_bytes`` of stored (compressed) payload. When a new message would
not fit, the oldest routine telemetry rows are deleted until it does (counted in
``dropped_messages`` / ``dropped_readings``; the consumer sees the gap in the sequence
numbers). Events are never dropped: an event is stored even past the bound, and telemetry
that cannot fit once every older telemetry row is gone is itself the oldest routine telemetry
left, so it is dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Literal

from common.contract import Channel, DeviceEvent, EventMessage, Reading, TelemetryMessage

log = logging.getLogger(__name__)

# Recently stored rows are also kept in memory, so live telemetry is never read back from
# disk; a backlog beyond this is read from SQLite.
_RECENT_MAX_BYTES = 8 * 1024 * 1024
_ACK_CHUNK = 500  # sequence numbers per DELETE statement (SQLite's parameter limit is higher)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq      INTEGER PRIMARY KEY,
    channel  TEXT    NOT NULL,
    routine  INTEGER NOT NULL,   -- 1: telemetry, may be dropped when full; 0: never dropped
    readings INTEGER NOT NULL,
    payload  BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    channel: Channel
    payload: bytes


@dataclass
class OutboxCounters:
    messages_in: int = 0
    readings_in: int = 0
    events_in: int = 0
    acked_messages: int = 0
    dropped_messages: int = 0
    dropped_readings: int = 0
    events_over_bound: int = 0


class Outbox:
    """SQLite outbox keyed by sequence number; thread-safe (one connection, one lock)."""

    def __init__(
        self,
        path: Path,
        gateway: str,
        *,
        max_bytes: int,
        readings_per_message: int = 60,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_bytes <= 0 or readings_per_message <= 0:
            raise ValueError("max_bytes and readings_per_message must be positive")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.gateway = gateway
        self.max_bytes = max_bytes
        self.readings_per_message = readings_per_message
        self.counters = OutboxCounters()
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        # Checkpoint the WAL every ~16 MB instead of 4 MB: during a backlog most pages are
        # deleted again soon after, and each checkpoint copies and syncs them.
        self._db.execute("PRAGMA wal_autocheckpoint=4000")
        self._db.executescript(_SCHEMA)
        self._next_seq = self._load_next_seq()
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages").fetchone()
        self._rows, self._bytes = int(row[0]), int(row[1])
        # Every stored row with seq >= _recent_from is also in _recent (seq order).
        self._recent: dict[int, OutboxRow] = {}
        self._recent_bytes = 0
        self._recent_from = self._next_seq
        log.info("outbox %s: %d messages (%d bytes) waiting, next seq %d", path, self._rows,
                 self._bytes, self._next_seq)

    def _load_next_seq(self) -> int:
        stored = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        highest = self._db.execute("SELECT MAX(seq) FROM messages").fetchone()[0]
        # The larger of the two: the counter is written with every message, the max guards a
        # file copied or edited by hand.
        return max(int(stored[0]) if stored else 0, int(highest) + 1 if highest is not None else 0)

    # ----------------------------------------------------------------- ReadingSink

    def put_readings(self, readings: Sequence[Reading]) -> None:
        size = self.readings_per_message
        chunks = [list(readings[i:i + size]) for i in range(0, len(readings), size)]
        if not chunks:
            return
        sent_at = self._clock()
        with self._lock:
            self._store(
                Channel.TELEMETRY, routine=True,
                build=[partial(self._telemetry, sent_at=sent_at, readings=chunk)
                       for chunk in chunks],
                counts=[len(chunk) for chunk in chunks],
            )
            self.counters.readings_in += len(readings)
        self._notify()

    def put_events(self, events: Sequence[DeviceEvent]) -> None:
        if not events:
            return
        sent_at = self._clock()
        batch = list(events)
        with self._lock:
            self._store(
                Channel.EVENTS, routine=False,
                build=[partial(self._events, sent_at=sent_at, events=batch)],
                counts=[0],
            )
            self.counters.events_in += len(batch)
        self._notify()

    def _telemetry(self, seq: int, *, sent_at: datetime, readings: list[Reading]
                   ) -> TelemetryMessage:
        return TelemetryMessage(gateway=self.gateway, seq=seq, sent_at=sent_at,
                                readings=readings)

    def _events(self, seq: int, *, sent_at: datetime, events: list[DeviceEvent]
                ) -> EventMessage:
        return EventMessage(gateway=self.gateway, seq=seq, sent_at=sent_at, events=events)

    def _store(self, channel: Channel, *, routine: bool,
               build: Sequence[Callable[[int], TelemetryMessage | EventMessage]],
               counts: Sequence[int]) -> None:
        """One transaction: the messages, the next sequence number, and any drops they need."""
        seq = self._next_seq
        plain = [make(seq + i).model_dump_json().encode() for i, make in enumerate(build)]
        # Stored compressed (JSON shrinks ~10-20x): the bound holds far more, and rows small
        # enough to sit inside a database page are much cheaper to insert and delete.
        rows = [(seq + i, channel.value, int(routine), count, zlib.compress(payload, 1))
                for i, (payload, count) in enumerate(zip(plain, counts, strict=True))]
        added = sum(len(row[4]) for row in rows)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            freed, kept = self._make_room(added, routine, rows)
            self._db.executemany(
                "INSERT INTO messages (seq, channel, routine, readings, payload) "
                "VALUES (?, ?, ?, ?, ?)", kept)
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('next_seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (seq + len(rows),))
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise
        self._next_seq = seq + len(rows)
        for number, channel_name, _, _, _ in kept:
            payload = plain[number - seq]
            self._recent[number] = OutboxRow(number, Channel(channel_name), payload)
            self._recent_bytes += len(payload)
        while self._recent_bytes > _RECENT_MAX_BYTES:
            oldest = self._recent.pop(next(iter(self._recent)))
            self._recent_bytes -= len(oldest.payload)
            self._recent_from = oldest.seq + 1
        self._rows += len(kept) - freed[0]
        self._bytes += sum(len(row[4]) for row in kept) - freed[1]
        self.counters.messages_in += len(rows)

    def _make_room(self, added: int, routine: bool, rows: list[tuple[int, str, int, int, bytes]]
                   ) -> tuple[tuple[int, int], list[tuple[int, str, int, int, bytes]]]:
        """Delete the oldest routine telemetry until ``added`` bytes fit; inside a transaction.

        Returns (rows freed, bytes freed) and the new rows that are kept.
        """
        excess = self._bytes + added - self.max_bytes
        if excess <= 0:
            return (0, 0), rows
        freed_rows = freed_bytes = dropped_readings = 0
        victims: list[int] = []
        cursor = self._db.execute(
            "SELECT seq, LENGTH(payload), readings FROM messages WHERE routine = 1 ORDER BY seq")
        for seq, size, readings in cursor:
            if freed_bytes >= excess:
                break
            victims.append(seq)
            freed_rows, freed_bytes = freed_rows + 1, freed_bytes + size
            dropped_readings += readings
        cursor.close()
        self._db.executemany("DELETE FROM messages WHERE seq = ?", ((s,) for s in victims))
        self._forget(victims)
        kept = rows
        if freed_bytes < excess:
            if routine:
                # Nothing older is droppable: the new telemetry is now the oldest routine data.
                while kept and freed_bytes < excess:
                    excess -= len(kept[0][4])
                    dropped_readings += kept[0][3]
                    self.counters.dropped_messages += 1
                    kept = kept[1:]
            else:
                self.counters.events_over_bound += len(rows)
                log.warning("outbox over its bound with events only: storing %d event message(s)"
                            " anyway (events are never dropped)", len(rows))
        if victims or len(kept) < len(rows):
            log.warning("outbox full: dropped %d old telemetry message(s), %d readings",
                        len(victims) + len(rows) - len(kept), dropped_readings)
        self.counters.dropped_messages += len(victims)
        self.counters.dropped_readings += dropped_readings
        return (freed_rows, freed_bytes), kept

    # ----------------------------------------------------------------- the uplink's side

    def after(self, seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` waiting messages with a sequence number above ``seq``, in order."""
        with self._lock:
            if seq + 1 >= self._recent_from:
                waiting = (row for row in self._recent.values() if row.seq > seq)
                return [row for row, _ in zip(waiting, range(limit), strict=False)]
            found = self._db.execute(
                "SELECT seq, channel, payload FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit)).fetchall()
        return [OutboxRow(int(s), Channel(c), zlib.decompress(p)) for s, c, p in found]

    def ack(self, seqs: Iterable[int]) -> None:
        """The broker has these: delete them (a seq already gone is ignored)."""
        keys = list(seqs)
        if not keys:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = size = 0
                for start in range(0, len(keys), _ACK_CHUNK):
                    chunk = keys[start:start + _ACK_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    found = self._db.execute(
                        "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages "
                        f"WHERE seq IN ({marks})", chunk).fetchone()
                    self._db.execute(f"DELETE FROM messages WHERE seq IN ({marks})", chunk)
                    rows, size = rows + int(found[0]), size + int(found[1])
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            self._rows -= rows
            self._bytes -= size
            self._forget(keys)
            self.counters.acked_messages += rows

    def _forget(self, seqs: Iterable[int]) -> None:
        for seq in seqs:
            row = self._recent.pop(seq, None)
            if row is not None:
                self._recent_bytes -= len(row.payload)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (cheap, non-blocking) after every put."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def waiting(self) -> int:
        return self._rows

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"outbox_messages": self._rows, "outbox_bytes": self._bytes,
                    "next_seq": self._next_seq, **vars(self.counters)}

    def close(self) -> None:
        with self._lock:
            self._db.close()
