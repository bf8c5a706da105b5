"""A short-lived, per-process cache of resolved bearer tokens.

Resolving ``Authorization: Bearer <token>`` costs a signature check (JWT) or a hash (API
key) and a database read (is the user still active, what role, which crew; is the key
revoked). Most requests come from a handful of callers re-sending the same token, so each
process keeps ``token -> Principal`` for :data:`PRINCIPAL_CACHE_SECONDS` and answers repeats
without the database.

What this costs in freshness: a user disabled or a key revoked **in another process** (a
second uvicorn worker, the CLI) is refused at most :data:`PRINCIPAL_CACHE_SECONDS` later.
Changes made through this process's service functions (:mod:`api.auth.service`) clear every
cache at once (:func:`invalidate_all`). A login JWT is never trusted past its own ``exp``.
Failed look-ups are not cached.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from api.auth.security import Principal

#: How long a resolved token is trusted without the database, s.
PRINCIPAL_CACHE_SECONDS = 5.0
#: Entries kept per process; beyond it the oldest half is dropped.
PRINCIPAL_CACHE_ENTRIES = 4096

_generation_lock = threading.Lock()
_generation = 0


def invalidate_all() -> None:
    """Forget every cached principal in this process (a user or token changed)."""
    global _generation
    with _generation_lock:
        _generation += 1


def _current_generation() -> int:
    return _generation


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    not_after: float  # time.monotonic() deadline
    generation: int


class PrincipalCache:
    """``token -> Principal`` for at most ``ttl_s`` seconds (or the token's own expiry)."""

    def __init__(self, ttl_s: float = PRINCIPAL_CACHE_SECONDS,
                 max_entries: int = PRINCIPAL_CACHE_ENTRIES) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        """The principal cached for ``token``, if still fresh."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry.generation != _current_generation() or time.monotonic() >= entry.not_after:
            with self._lock:
                self._entries.pop(token, None)
            return None
        return entry.principal

    def put(self, token: str, principal: Principal, *, expires_in_s: float | None = None,
            generation: int | None = None) -> None:
        """Remember ``principal`` for ``token``; ``expires_in_s`` caps it (a JWT's ``exp``).

        ``generation`` is :func:`generation` read *before* the database look-up, so a change
        committed meanwhile is not hidden behind the new entry.
        """
        if self._ttl_s <= 0:
            return
        lifetime = self._ttl_s if expires_in_s is None else min(self._ttl_s, expires_in_s)
        if lifetime <= 0:
            return
        entry = _Entry(principal, time.monotonic() + lifetime,
                       _current_generation() if generation is None else generation)
        with self._lock:
            if len(self._entries) >= self._max_entries:
                for stale in list(self._entries)[: self._max_entries // 2]:
                    del self._entries[stale]
            self._entries[token] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def generation() -> int:
    """The invalidation counter; read it before a look-up and pass it to ``put``."""
    return _current_generation()
