"""A per-process cache of ticket list pages, as the JSON bytes the API answers.

An entry is keyed by the query and the viewer's scope (everyone but a crew member sees the
same list; a crew member sees their crew's) and stamped with the ticket table's version
(api/tickets/changes.py) read *before* the page. A request reads the current version (one
indexed row) and answers from the cache when the stamps agree; any ticket write, in any
process, writes a new version in its own transaction, so a cached page is never older than
the last committed ticket change the request could see.

On PostgreSQL the version is read on the event loop (:class:`AsyncVersionReader`), so a
cached page is answered without a worker thread or an ORM session; only a miss builds the
page in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Hashable

import psycopg
from sqlalchemy.engine import make_url

#: Distinct list queries kept per process (least recently used dropped first).
MAX_ENTRIES = 256


class ListingCache:
    """Least-recently-used pages by query and scope, each valid for one table version."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: int) -> bytes | None:
        """The page cached for ``key`` at ``version``, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != version:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, version: int, body: bytes) -> None:
        with self._lock:
            self._entries[key] = (version, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class AsyncVersionReader:
    """Reads a table's version stamp on the event loop, over one PostgreSQL connection of
    its own (autocommit, prepared statement): a cached page then costs one round trip and
    no worker thread, session or pool checkout.

    Made in the app's lifespan (bound to the loop that serves requests) and closed there;
    reads are serialised on the connection (a primary-key lookup: a fraction of a
    millisecond each). A broken connection is replaced once per read.
    """

    _QUERY = "SELECT version FROM change_counters WHERE name = %s"

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._connection: psycopg.AsyncConnection[tuple[int]] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_url(cls, database_url: str) -> AsyncVersionReader | None:
        """A reader for a PostgreSQL SQLAlchemy URL; None for other databases."""
        url = make_url(database_url)
        if url.get_backend_name() != "postgresql":
            return None
        return cls(url.set(drivername="postgresql").render_as_string(hide_password=False))

    async def read(self, name: str) -> int | None:
        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self._connection is None or self._connection.closed:
                        self._connection = await psycopg.AsyncConnection.connect(
                            self._conninfo, autocommit=True)
                    cursor = await self._connection.execute(self._QUERY, (name,),
                                                            prepare=True)
                    row = await cursor.fetchone()
                    return int(row[0]) if row is not None else None
                except psycopg.OperationalError:
                    await self._discard()
                    if attempt == 2:
                        raise
        return None  # not reached: the second failure raised

    async def _discard(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = None

    async def close(self) -> None:
        async with self._lock:
            await self._discard()
