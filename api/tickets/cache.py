"""A per-process cache of ticket list pages, as the JSON bytes the API answers.

An entry is keyed by the query and the viewer's scope (everyone but a crew member sees the
same list; a crew member sees their crew's) and stamped with the ticket table's version
(api/tickets/changes.py) read *before* the page. A request reads the current version (one
indexed row) and answers from the cache when the stamps agree; any ticket write, in any
process, writes a new version in its own transaction, so a cached page is never older than
the last committed ticket change the request could see.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

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
