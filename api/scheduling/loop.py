"""Re-plan when the planning inputs change: debounced polling, in one process.

Every ``replan_poll_s`` the loop reads a cheap fingerprint of what the plan depends on
(active tickets: how many and their last change; crews: settings and reported positions).
A new ticket from alert intake, a crew moving a ticket, a crew reporting its position or a
dispatcher editing a crew all change it. Once it has stayed the same for
``replan_debounce_s`` (a burst of alerts is planned once) the loop re-plans; it also
re-plans every ``replan_max_age_s`` while there is work, so ETAs follow the clock. The
plan's own writes are part of the fingerprint taken after it, so they do not trigger
another plan. Polling the database (rather than hooks in intake and transitions) also sees
changes made by other workers and by the CLI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.auth.security import SYSTEM
from api.errors import Conflict
from api.scheduling import service
from api.scheduling.config import SchedulingConfig

log = logging.getLogger(__name__)


class Replanner:
    """Decides when to re-plan; ``tick`` is one look (the thread calls it every poll)."""

    def __init__(self, session_factory: sessionmaker[Session], config: SchedulingConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.session_factory = session_factory
        self.config = config
        self.clock = clock
        self.planned: tuple[Any, ...] | None = None  # the fingerprint after the last plan
        self.planned_at: float | None = None
        self.seen: tuple[Any, ...] | None = None  # the latest differing fingerprint
        self.seen_since = 0.0
        self.plans = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _fingerprint(self) -> tuple[Any, ...]:
        with self.session_factory() as db_session:
            return service.fingerprint(db_session)

    def due(self, current: tuple[Any, ...]) -> bool:
        """Is it time to re-plan, given the fingerprint just read?"""
        now = self.clock()
        if current == self.planned:
            self.seen = None
            stale = self.planned_at is not None and \
                now - self.planned_at >= self.config.replan_max_age_s
            return stale and current[0] > 0
        if current != self.seen:
            self.seen, self.seen_since = current, now
        return now - self.seen_since >= self.config.replan_debounce_s

    def tick(self) -> bool:
        """Look once; re-plan if due. True when it re-planned (or tried to: no crew yet)."""
        if not self.due(self._fingerprint()):
            return False
        try:
            service.replan(session_factory=self.session_factory, config=self.config,
                           actor=SYSTEM)
        except Conflict as exc:  # no crews yet: wait for the next change
            log.info("re-plan skipped: %s", exc.detail)
        self.planned, self.planned_at, self.seen = self._fingerprint(), self.clock(), None
        self.plans += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.config.replan_poll_s):
            try:
                self.tick()
            except SQLAlchemyError:
                log.exception("re-plan pass failed; trying again at the next poll")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="replanner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.time_limit_s + 10)
