"""Serving the API from several worker processes, each with a listening socket of its own.

uvicorn's own way to run several workers binds one socket in the parent process and shares
it: every worker waits on it and, when connections arrive, the first to wake accepts all
that are waiting (asyncio accepts up to the backlog at once). A client that opens its
connections together (a reverse proxy's pool, the analysis' HTTP client, a load test) then
often finds them all on one worker while the others idle. Measured with two workers and 32
connections opened at once: all 32 on one worker in three runs of five, at 1,200 instead of
3,100 requests/s.

Here each worker binds its own socket to the address with ``SO_REUSEPORT``, and the kernel
spreads new connections over the workers by a hash of their addresses. The parent binds
nothing: it checks the port is free, starts the workers, starts another in place of one that
dies, and stops them all on SIGINT or SIGTERM (each finishes its requests in flight, as
uvicorn does); a worker whose parent was killed stops by itself. A worker that fails to
start (uvicorn's exit code 3: the app cannot load, the port is taken) stops the server with
that code rather than being restarted in a loop.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger(__name__)

#: How often the parent looks at its workers, s.
WATCH_INTERVAL_S = 0.5
#: How often a worker checks that its parent still runs, s.
PARENT_CHECK_S = 1.0
#: How long stopping workers may take to finish their requests before they are killed, s.
STOP_TIMEOUT_S = 30.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that other workers may bind too (``SO_REUSEPORT``);
    not listening yet (uvicorn listens on it)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port``. Checked without ``SO_REUSEPORT``: with it,
    a second server started on the same port by mistake would join the first one's sockets
    and silently share its connections."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        log.error("cannot serve on %s:%d: %s", host, port, exc)
        return False
    finally:
        probe.close()
    return True


def _run_worker(config: uvicorn.Config) -> None:
    """One worker process: its own socket, one uvicorn server on it."""
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True,
                     name="parent-watch").start()
    config.configure_logging()
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listening_socket(config.host, config.port)])
    finally:
        if not server.started:  # whatever ended it (an import error exits with 1)
            sys.exit(STARTUP_FAILURE)


def _stop_when_orphaned(parent: int) -> None:
    """Shut this worker down as on SIGTERM once its parent is gone (killed without the
    chance to stop it), rather than serve on as an orphan holding the port."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os.kill(os.getpid(), signal.SIGTERM)


class _Workers:
    """The worker processes and the parent's watch over them."""

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        self._config = config
        self._context = multiprocessing.get_context("spawn")
        self._processes = [self._start() for _ in range(count)]
        self.stopping = threading.Event()

    def _start(self) -> SpawnProcess:
        process = self._context.Process(target=_run_worker, args=(self._config,),
                                        name="api-worker")
        process.start()
        return process

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes if process.pid is not None]

    def watch(self) -> int:
        """Keep the workers running until told to stop (0) or one fails to start (3)."""
        while not self.stopping.wait(WATCH_INTERVAL_S):
            for index, process in enumerate(self._processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("a worker failed to start: stopping the server")
                    return STARTUP_FAILURE
                log.warning("worker %s exited with code %s: starting another", process.pid,
                            process.exitcode)
                self._processes[index] = self._start()
        return 0

    def stop(self) -> None:
        """SIGTERM to every worker (uvicorn's graceful shutdown), then wait; kill what is
        still running after :data:`STOP_TIMEOUT_S`."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                log.warning("worker %s did not stop in time: killing it", process.pid)
                process.kill()
                process.join()


def serve_workers(config: uvicorn.Config, count: int) -> int:
    """Serve ``config``'s app from ``count`` worker processes until SIGINT or SIGTERM; the
    exit code (0, or 3 when the port is taken or a worker failed to start)."""
    if not _port_is_free(config.host, config.port):
        return STARTUP_FAILURE
    workers = _Workers(config, count)

    def stop(_signal: int, _frame: FrameType | None) -> None:
        workers.stopping.set()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT,
                                                                   signal.SIGTERM)}
    log.info("serving on %s:%d with %d workers (pids %s)", config.host, config.port, count,
             ", ".join(map(str, workers.pids)))
    try:
        return workers.watch()
    finally:
        workers.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
