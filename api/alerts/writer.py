"""The intake writer: group commit for alert intake.

Every alert intake is a write: the alert, its audit entry, maybe its ticket, then a commit
the request must wait for. One transaction per request spends most of its time on the
database's round trips (begin, read, update, insert, commit) rather than on the work. The
writer is one thread per API process that takes every alert waiting at that moment into one
transaction (:func:`api.alerts.flows.receive_batch`: one read of the stored alerts, every
change, one commit) and then answers each request. While it commits a batch, the next one
gathers, so batches grow with the load and a lone alert waits for nothing.

The guarantees are those of one transaction per alert: a request is answered only after its
alert is committed; alerts are applied in the order they arrived (so two versions of one key
apply in order); each answer is what that alert alone would have got, an error included
(a batch that fails is replayed alert by alert, each in its own transaction). Races with
the other workers' writers are settled by the database, as between two requests.

Requests on an event loop reach the writer a loop turn at a time (:meth:`IntakeWriter.receive`):
the alerts that the loop's requests hand in while it runs one turn go to the writer together,
after the turn. Under load one turn parses many requests, so the writer wakes once for all
of them instead of once per request and its batches are the loop's whole harvest (a batch
costs ~0.8 ms of the writer's CPU whatever its size, the database's round trips and the
statements' set-up, against ~0.12 ms per alert: docs/api.md). A lone request waits for the
end of its own turn, no longer.

The thread keeps one database connection for its life (:class:`_HeldConnection`): a batch
needs no pool checkout, no liveness ping and no reset on return, a round trip each. A
connection that broke is replaced before the next batch (the batch that found it broken is
replayed alert by alert on pooled connections).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from api.alerts import flows
from api.alerts.flows import Received, Submission
from api.auth.security import Principal
from api.emergency.plans import PlanDefinition
from api.tickets.rules import TicketRule
from common.alerts import Alert, AlertKind
from common.settings import ApiSettings

log = logging.getLogger(__name__)

#: The most alerts one transaction takes (a burst beyond it commits in several batches).
MAX_BATCH = 64
#: How long a thread may keep the GIL while another waits for it, s (Python's default is
#: 5 ms). The writer gives the GIL up at each wait on the database (the two round trips of
#: a batch and psycopg's socket polls within them) and must then win it back from the
#: event loop, which under load always has a request to parse: at 5 ms a batch waited
#: ~25 ms for the GIL, longer than its work and the database's took, and intake throughput
#: was bounded by that wait with a core idle.
GIL_SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True, slots=True)
class _Job:
    """A submission and where its outcome goes: a thread's future, or a future on an event
    loop (settled on that loop)."""

    submission: Submission
    future: Future[Received] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[Received] | None = None

    def claim(self) -> bool:
        """False when the caller gave up before the write began (nothing is written)."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        return self.waiter is not None and not self.waiter.cancelled()


def _settle_on_loop(settled: Sequence[tuple[asyncio.Future[Received], flows.Outcome]]) -> None:
    for waiter, outcome in settled:
        if waiter.done():  # cancelled meanwhile (the client went away)
            continue
        if isinstance(outcome, Exception):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def _run_nicer(nice: int) -> None:
    """Lower the calling thread's priority by ``nice`` (Linux schedules threads on their
    own; elsewhere nothing).

    The writer then gets a core when the event loop has no request to parse, or after it
    has parsed a while: batches gather more alerts before they are written, and a batch
    costs ~0.8 ms of CPU whatever its size (under wrk: 4-5 alerts a batch at the same
    priority, 6-7 at 10 nicer, and ~15 % less writer CPU per alert; benchmarks/README.md,
    "Intake, round 6"). A lone alert still finds a core idle and is written at once."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, now + nice))
    except OSError as exc:  # e.g. a sandbox without setpriority: run at the same priority
        log.info("the intake writer keeps its priority: %s", exc)


class _HeldConnection:
    """Sessions on one connection of ``factory``'s engine, kept between batches (opened on
    first use, replaced when it was invalidated or closed)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._connection: Connection | None = None

    def session(self) -> Session:
        connection = self._connection
        if connection is None or connection.invalidated or connection.closed:
            self.close()
            engine: Engine = self._factory.kw["bind"]
            connection = self._connection = engine.connect()
        return self._factory(bind=connection)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class IntakeWriter:
    """Takes alerts in batches on a thread of its own (started on first use).

    :meth:`receive` (on an event loop) or :meth:`submit` (from any thread, returning a
    future) queue an alert; the answer is its :class:`Received` once the alert is committed,
    or the error it failed with. :meth:`close` lets the thread finish
    what was queued and stop; a later :meth:`submit` starts a new one.
    """

    def __init__(self, session_factory: sessionmaker[Session], *,
                 rules: Mapping[AlertKind, TicketRule], plans: Iterable[PlanDefinition],
                 settings: ApiSettings, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._session_factory = session_factory
        self._rules = rules
        self._plans = list(plans)
        self._settings = settings
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[list[_Job] | None] | None = None
        self._thread: threading.Thread | None = None
        #: Jobs handed in on each event loop during its current turn (touched on that
        #: loop's thread only).
        self._gathering: dict[asyncio.AbstractEventLoop, list[_Job]] = {}

    def submit(self, alert: Alert, actor: Principal) -> Future[Received]:
        """Queue ``alert`` (sent by ``actor``); thread-safe."""
        future: Future[Received] = Future()
        self._put([_Job(Submission(alert, actor), future=future)])
        return future

    async def receive(self, alert: Alert, actor: Principal) -> Received:
        """Queue ``alert`` and wait, on the running event loop, until it is committed.

        The alert goes to the writer with the others this loop turn hands in (after the
        turn); the writer settles every request of a batch on this loop with one wake-up."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Received] = loop.create_future()
        job = _Job(Submission(alert, actor), loop=loop, waiter=waiter)
        gathered = self._gathering.get(loop)
        if gathered is None:
            self._gathering[loop] = [job]
            loop.call_soon(self._hand_over, loop)
        else:
            gathered.append(job)
        return await waiter

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """The jobs ``loop`` gathered this turn, to the writer in one put."""
        self._put(self._gathering.pop(loop))

    def _put(self, jobs: list[_Job]) -> None:
        with self._lock:
            if self._queue is None or self._thread is None or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                # process-wide: the event loop now yields the GIL to the writer sooner
                sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
                self._thread = threading.Thread(target=self._run, args=(self._queue,),
                                                name="alert-intake-writer", daemon=True)
                self._thread.start()
            self._queue.put(jobs)

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish the alerts queued so far, then stop the thread."""
        with self._lock:
            jobs, thread = self._queue, self._thread
            self._queue = self._thread = None
            if jobs is not None:
                jobs.put(None)
        if thread is not None:
            thread.join(timeout_s)

    def _run(self, jobs: queue.SimpleQueue[list[_Job] | None]) -> None:
        _run_nicer(self._settings.intake_writer_nice)
        held = _HeldConnection(self._session_factory)
        try:
            self._take_batches(jobs, held)
        finally:
            held.close()

    def _take_batches(self, jobs: queue.SimpleQueue[list[_Job] | None],
                      held: _HeldConnection) -> None:
        """Batches of at most ``max_batch`` jobs in arrival order, until the ``None``
        that :meth:`close` queues (the jobs before it are written first)."""
        waiting: list[_Job] = []
        stop = False
        while waiting or not stop:
            while not stop and len(waiting) < self._max_batch:
                try:
                    handed = jobs.get() if not waiting else jobs.get_nowait()
                except queue.Empty:
                    break
                if handed is None:
                    stop = True
                else:
                    waiting.extend(handed)
            batch, waiting = waiting[:self._max_batch], waiting[self._max_batch:]
            if batch:
                self._write(batch, held)

    def _write(self, batch: list[_Job], held: _HeldConnection) -> None:
        live = [job for job in batch if job.claim()]
        if not live:
            return
        outcomes: Sequence[flows.Outcome]
        try:
            outcomes = flows.receive_batch(
                session_factory=self._session_factory, batch_session=held.session,
                batch=[job.submission for job in live], rules=self._rules, plans=self._plans,
                settings=self._settings)
        except Exception as exc:  # noqa: BLE001 - e.g. no database: each request raises it
            log.warning("alert intake failed for a batch of %d: %s", len(live), exc)
            outcomes = [exc] * len(live)
        on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Received],
                                                             flows.Outcome]]] = {}
        for job, outcome in zip(live, outcomes, strict=True):
            if job.future is not None:
                if isinstance(outcome, Exception):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)
            elif job.loop is not None and job.waiter is not None:
                on_loops.setdefault(job.loop, []).append((job.waiter, outcome))
        for loop, settled in on_loops.items():
            try:
                loop.call_soon_threadsafe(_settle_on_loop, settled)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                log.info("an event loop closed before %d alerts were answered", len(settled))
