"""Several API workers, each with a socket of its own (api/workers.py), on a tiny app."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from api.workers import serve_workers
from common.localservices import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]


def _serve(port: int, app: str = "tests.api.workers_app:app",
           workers: int = 2) -> subprocess.Popen[bytes]:
    code = ("import sys, uvicorn; from api.workers import serve_workers; "
            f"sys.exit(serve_workers(uvicorn.Config({app!r}, host='127.0.0.1', port={port}, "
            f"log_level='warning'), {workers}))")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO)


def _pid_answering(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        return int(connection.getresponse().read())
    finally:
        connection.close()


def _wait_until_answering(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _pid_answering(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wait_until_every_worker_answers(server: subprocess.Popen[bytes], port: int, count: int,
                                     timeout_s: float = 60) -> None:
    """Until ``count`` workers run and each has answered (one may listen before the
    others, and has the port to itself meanwhile)."""
    _wait_until_answering(port, timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        workers = _workers_of(server)
        if len(workers) == count and set(_answers_on_connections_opened_together(
                port, 32)) == workers:
            return
        assert time.monotonic() < deadline, "not every worker answers"
        time.sleep(0.2)


def _workers_of(server: subprocess.Popen[bytes]) -> set[int]:
    """The server's live worker processes (not a dead one not yet reaped)."""
    workers = set()
    for child in psutil.Process(server.pid).children():
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                workers.add(child.pid)
        except psutil.Error:  # gone, or a zombie
            continue
    return workers


@pytest.fixture
def two_workers() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    server = _serve(port)
    try:
        _wait_until_every_worker_answers(server, port, 2)
        yield server, port
    finally:
        stop_process(server, timeout_s=40)


def _answers_on_connections_opened_together(port: int, count: int) -> Counter[int]:
    """Open ``count`` connections at once, then ask on each which process answers."""
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        def ask(sock: socket.socket) -> int:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            return int(answer.rsplit(b"\r\n\r\n", 1)[1])

        with ThreadPoolExecutor(8) as pool:
            return Counter(pool.map(ask, connections))
    finally:
        for sock in connections:
            sock.close()


def test_connections_opened_together_are_spread_over_every_worker(
        two_workers: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = two_workers
    # with one shared socket the first worker to wake often accepted all of them
    for _ in range(3):
        answered = _answers_on_connections_opened_together(port, 32)
        assert set(answered) == _workers_of(server)
        assert min(answered.values()) >= 6, answered


def test_a_worker_that_dies_is_replaced_and_the_rest_keep_serving(
        two_workers: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = two_workers
    before = _workers_of(server)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while len(_workers_of(server) - {victim}) < 2:
        assert time.monotonic() < deadline, "no worker took the dead one's place"
        time.sleep(0.1)
    replacement = (_workers_of(server) - before).pop()
    _wait_until_every_worker_answers(server, port, 2)
    assert replacement in _workers_of(server)


def test_sigterm_stops_every_worker_and_exits_cleanly(
        two_workers: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = two_workers
    workers = _workers_of(server)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=40) == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in workers)
    with pytest.raises(OSError):
        _pid_answering(port)


def test_workers_whose_parent_was_killed_stop_by_themselves(
        two_workers: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = two_workers
    workers = [psutil.Process(pid) for pid in _workers_of(server)]
    server.kill()
    server.wait()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    with pytest.raises(OSError):
        _pid_answering(port)


def test_a_port_another_program_listens_on_is_refused_before_any_worker_starts() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = uvicorn.Config("tests.api.workers_app:app", host="127.0.0.1", port=port)
        assert serve_workers(config, 2) == STARTUP_FAILURE


def test_an_app_that_cannot_load_stops_the_server_instead_of_restarting_forever() -> None:
    server = _serve(free_port(), app="tests.api.no_such_module:app")
    try:
        assert server.wait(timeout=60) == STARTUP_FAILURE
    finally:
        stop_process(server, timeout_s=40)
