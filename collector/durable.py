"""The collector's on-disk stores (spool, dead letters) open SQLite the same way."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_durable(path: Path, schema: str) -> sqlite3.Connection:
    """A SQLite file where a committed row is on disk (fsynced) before the call returns.

    WAL plus ``synchronous=FULL``: the MQTT message behind a row is acknowledged right after,
    so the row must survive a power cut, not only a crash. Shared by the writer thread and
    the MQTT thread: callers serialise access with their own lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(schema)
    return db
