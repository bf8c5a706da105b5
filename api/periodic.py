"""Run a job every so often until a signal (or a test) says stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError

from common.influx import InfluxError

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (handlers restored after)."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current pass", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_periodically(one_pass: Callable[[], None], *, every_s: float, passes: int | None,
                     stop: threading.Event) -> int:
    """Call ``one_pass`` every ``every_s`` seconds until ``stop`` is set (or ``passes`` ran).

    A pass that fails on the database or InfluxDB is logged and the next one tries again.
    Returns the number of passes made.
    """
    done = 0
    while not stop.is_set():
        try:
            one_pass()
        except (SQLAlchemyError, InfluxError) as exc:
            log.error("pass failed, retrying in %.0f s: %s", every_s, exc)
        done += 1
        if passes is not None and done >= passes:
            break
        stop.wait(every_s)
    return done
