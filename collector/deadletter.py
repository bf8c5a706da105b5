"""Dead letters: every refused message or reading, kept with its raw bytes and the reason.

SQLite in the collector's data folder, so an operator can inspect what a device sent::

    sqlite3 var/collector/deadletter.sqlite3 \
        "SELECT received_at, gateway, reason FROM dead_letter ORDER BY id DESC LIMIT 20"

Bounded: past ``max_rows`` the oldest rows go, so a device spewing garbage cannot fill the
disk. Raw payloads larger than ``max_raw_bytes`` are kept truncated (the reason says so).
``synchronous=FULL``: the message is acknowledged after its dead letter is added, so the row
must survive a power cut, not only a crash (about 2,000 rows/s here; bad input is rare).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from collector.durable import open_durable


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: str
    topic: str
    gateway: str | None
    reason: str
    raw: bytes


class DeadLetterStore:
    def __init__(self, path: Path, max_rows: int = 100_000, max_raw_bytes: int = 1_048_576):
        self._db = open_durable(
            path,
            "CREATE TABLE IF NOT EXISTS dead_letter (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " received_at TEXT NOT NULL, topic TEXT NOT NULL, gateway TEXT,"
            " reason TEXT NOT NULL, raw BLOB NOT NULL)",
        )
        self._lock = threading.Lock()
        self._max_rows = max_rows
        self._max_raw = max_raw_bytes

    def add(self, topic: str, gateway: str | None, reason: str, raw: bytes) -> None:
        if len(raw) > self._max_raw:
            reason = f"{reason} [raw truncated to {self._max_raw} of {len(raw)} bytes]"
            raw = raw[: self._max_raw]
        now = datetime.now(UTC).isoformat()
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO dead_letter (received_at, topic, gateway, reason, raw)"
                " VALUES (?, ?, ?, ?, ?)",
                (now, topic, gateway, reason, raw),
            )
            newest = cursor.lastrowid or 0
            if newest > self._max_rows and newest % 1000 == 0:
                oldest_kept = newest - self._max_rows
                self._db.execute("DELETE FROM dead_letter WHERE id <= ?", (oldest_kept,))

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, received_at, topic, gateway, reason, raw FROM dead_letter"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM dead_letter").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
