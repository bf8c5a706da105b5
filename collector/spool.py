"""A bounded on-disk queue of line-protocol batches, for while InfluxDB cannot take them.

SQLite with ``synchronous=FULL``: a batch is on disk (fsynced) when ``append`` returns, so the
MQTT messages behind it can be acknowledged. Batches come back oldest first. When the spool
holds ``max_bytes`` of line protocol, ``append`` raises :class:`SpoolFull`; the writer then
stops acknowledging, and the broker keeps the unacknowledged messages in the collector's
persistent session until there is room again.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

from collector.durable import open_durable


class SpoolFull(RuntimeError):
    """The spool is at its size bound."""


class Spool:
    def __init__(self, path: Path, max_bytes: int):
        self._db = open_durable(
            path,
            "CREATE TABLE IF NOT EXISTS batch (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " lines BLOB NOT NULL, size INTEGER NOT NULL, points INTEGER NOT NULL)",
        )
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self._batches, self._bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM batch"
        ).fetchone()

    @property
    def batches(self) -> int:
        return int(self._batches)

    @property
    def bytes(self) -> int:
        """Uncompressed line-protocol bytes held; the bound applies to this."""
        return int(self._bytes)

    def append(self, lines: list[str]) -> None:
        text = "\n".join(lines).encode()
        with self._lock:
            if self._bytes + len(text) > self.max_bytes and self._batches:
                raise SpoolFull(f"spool holds {self._bytes} of {self.max_bytes} bytes")
            self._db.execute(
                "INSERT INTO batch (lines, size, points) VALUES (?, ?, ?)",
                (zlib.compress(text, 1), len(text), len(lines)),
            )
            self._batches += 1
            self._bytes += len(text)

    def oldest(self) -> tuple[int, list[str]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, lines FROM batch ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return int(row[0]), zlib.decompress(row[1]).decode().split("\n")

    def remove(self, batch_id: int) -> None:
        with self._lock:
            size = self._db.execute("SELECT size FROM batch WHERE id = ?", (batch_id,)).fetchone()
            if size is None:
                return
            self._db.execute("DELETE FROM batch WHERE id = ?", (batch_id,))
            self._batches -= 1
            self._bytes -= int(size[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
