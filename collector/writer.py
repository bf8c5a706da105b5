"""Batching, durable writes and acknowledgements.

Messages arrive from the MQTT thread as :class:`Pending` items, in order. The writer thread
gathers them into a batch bounded by points and time, makes the batch durable -- written to
InfluxDB, or appended (fsynced) to the spool while InfluxDB is unreachable -- and only then
acknowledges the messages, in the order they arrived. While the spool holds anything, new
batches queue behind it so InfluxDB receives everything in order; the spool drains with
exponential backoff between failed attempts.

A batch InfluxDB refuses (4xx) is split in halves until the refused lines are found; those go
to the dead-letter store with InfluxDB's reason, the rest is written. A refusal of the request
itself -- no such database (404), credentials refused (401/403) -- says nothing about the
points, so it is handled as an outage: a missing database is created and the write retried,
and otherwise the batch is spooled and retried with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.deadletter import DeadLetterStore
from collector.spool import Spool, SpoolFull
from collector.stats import Stats
from common.influx import InfluxClient, InfluxError, InfluxRejected, InfluxUnavailable
from common.schema import PRECISION

log = logging.getLogger(__name__)

Ack = Callable[[list["Pending"]], None]
# 4xx answers about the request, not its lines: bisecting would dead-letter every point.
_REQUEST_REFUSED = frozenset({401, 403, 404})
LINGER_S = 0.05


@dataclass(slots=True)
class Pending:
    """One received message waiting for its points to be durable before it is acknowledged."""

    mid: int
    qos: int
    lines: list[str]
    topic: str = ""
    generation: int = 0
    received: float = field(default_factory=time.monotonic)


class Writer:
    def __init__(
        self,
        *,
        influx: InfluxClient,
        spool: Spool,
        dead_letters: DeadLetterStore,
        stats: Stats,
        ack: Ack,
        batch_max_points: int,
        batch_max_delay_s: float,
        flush_at_messages: int,
        retry_initial_s: float,
        retry_max_s: float,
    ) -> None:
        self._influx = influx
        self._spool = spool
        self._dead = dead_letters
        self._stats = stats
        self._ack = ack
        self._max_points = batch_max_points
        self._max_delay = batch_max_delay_s
        self._flush_at_messages = max(1, flush_at_messages)
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._backoff = retry_initial_s
        self._next_attempt = 0.0
        # A deque and an Event, not a queue.Queue: the MQTT thread hands over every message,
        # and Queue's locking per item cost more than validating a one-reading message.
        self._incoming: deque[Pending] = deque()
        self._arrived = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-writer", daemon=True)
        self.influx_up = True

    # ----------------------------------------------------------------- called by others

    def submit(self, item: Pending) -> None:
        self._incoming.append(item)
        if not self._arrived.is_set():
            self._arrived.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Flush what is queued (to InfluxDB or the spool), then stop."""
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def queued(self) -> int:
        return len(self._incoming)

    # ----------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        while True:
            batch = self._gather()
            if batch:
                self._make_durable(batch)
            self._drain_spool()
            if self._stop.is_set() and not self._incoming:
                return

    def _gather(self) -> list[Pending]:
        """Up to batch_max_points, or what arrived within batch_max_delay_s of the first.

        A stream that pauses for LINGER_S closes the batch early: under load batches stay
        large, and a quiet link does not wait the whole delay for nothing.
        """
        if not self._wait_for_items(0.2):
            return []
        batch: list[Pending] = []
        points = 0
        deadline = time.monotonic() + self._max_delay
        while points < self._max_points and len(batch) < self._flush_at_messages:
            try:
                item = self._incoming.popleft()
            except IndexError:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._wait_for_items(min(remaining, LINGER_S)):
                    break
                continue
            batch.append(item)
            points += len(item.lines)
        return batch

    def _wait_for_items(self, timeout_s: float) -> bool:
        """True once something is queued, False after timeout_s without anything."""
        if self._incoming:
            return True
        self._arrived.clear()
        if self._incoming:  # submitted between the check and the clear: it saw the flag set
            return True
        return self._arrived.wait(timeout_s)

    def _make_durable(self, batch: list[Pending]) -> None:
        lines = [line for item in batch for line in item.lines]
        while True:
            if not lines:
                break
            if self._spool.batches == 0 and self._try_write(lines):
                break
            try:
                self._spool.append(lines)
                self._stats.add(spooled_batches=1)
                break
            except SpoolFull:
                # Hold the acknowledgements: the broker keeps the messages meanwhile.
                if self._stop.is_set():
                    log.warning("stopping with a full spool: %d messages left unacknowledged "
                                "for the broker to redeliver", len(batch))
                    return
                log.warning("spool full (%d bytes); waiting for InfluxDB", self._spool.bytes)
                self._stats.add(spool_full_waits=1)
                if not self._drain_spool(wait=True):
                    time.sleep(min(self._backoff, 1.0))
        self._ack(batch)
        self._stats.observe_lag(time.monotonic() - batch[0].received)

    def _try_write(self, lines: list[str]) -> bool:
        """Write to InfluxDB; False if it is unavailable (the caller spools)."""
        if time.monotonic() < self._next_attempt:
            return False
        try:
            self._write_splitting_rejects(lines)
        except InfluxUnavailable as exc:
            self._failed(exc)
            return False
        self._succeeded()
        return True

    def _write_splitting_rejects(self, lines: list[str]) -> None:
        try:
            self._post(lines)
        except InfluxRejected as exc:
            if len(lines) == 1:
                self._dead.add("influxdb", None, f"InfluxDB refused the point: {exc}",
                               lines[0].encode())
                self._stats.add(dead_letters=1, rejected_points=1)
                return
            middle = len(lines) // 2
            self._write_splitting_rejects(lines[:middle])
            self._write_splitting_rejects(lines[middle:])
            return
        self._stats.add(points_written=len(lines), batches_written=1)

    def _post(self, lines: list[str], *, may_create: bool = True) -> None:
        """One write; raises InfluxRejected only when InfluxDB refused some of the lines."""
        try:
            self._influx.write_lines(lines, PRECISION)
        except InfluxRejected as exc:
            if exc.status_code not in _REQUEST_REFUSED:
                raise
            if exc.status_code == 404 and may_create and self._create_database():
                self._post(lines, may_create=False)
                return
            raise InfluxUnavailable(f"{exc} (request refused; retrying)",
                                    exc.status_code) from exc

    def _create_database(self) -> bool:
        """InfluxDB was down at start-up, or its data was lost: create the database now."""
        try:
            self._influx.ensure_database()
        except InfluxError as exc:
            log.warning("could not create the database: %s", exc)
            return False
        log.info("database missing at write time: created it")
        return True

    def _drain_spool(self, wait: bool = False) -> bool:
        """Replay spooled batches oldest first while InfluxDB takes them; True if any went."""
        drained = False
        started = time.monotonic()
        while self._spool.batches:
            if time.monotonic() < self._next_attempt:
                return drained
            oldest = self._spool.oldest()
            if oldest is None:
                return drained
            batch_id, lines = oldest
            try:
                self._write_splitting_rejects(lines)
            except InfluxUnavailable as exc:
                self._failed(exc)
                return drained
            self._spool.remove(batch_id)
            self._succeeded()
            drained = True
            # Let fresh messages in between spooled batches unless we are blocked on space.
            if not wait and self._incoming and time.monotonic() - started > 1.0:
                return drained
        return drained

    def _failed(self, exc: InfluxUnavailable) -> None:
        if self.influx_up:
            log.warning("InfluxDB unavailable, spooling to disk: %s", exc)
        self.influx_up = False
        self._stats.add(write_failures=1)
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._retry_max)

    def _succeeded(self) -> None:
        if not self.influx_up:
            log.info("InfluxDB is back; replaying the spool")
        self.influx_up = True
        self._backoff = self._retry_initial
        self._next_attempt = 0.0
