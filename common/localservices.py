"""Run a real Mosquitto and a real InfluxDB as child processes on free local ports.

Used by the demo (data in a local folder), the tests (temporary folders, stopped and
restarted to prove nothing is lost) and the benchmarks. Needs Debian's ``mosquitto`` and
``influxdb`` packages; ``scripts/bootstrap.sh`` installs them.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service could not be started."""


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 20.0,
                 kill: bool = False) -> None:
    """Stop a child that still runs: SIGTERM (or SIGKILL with ``kill``), then SIGKILL if it
    has not exited after ``timeout_s``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise ServiceError(f"{name} is not installed: run scripts/bootstrap.sh")


@dataclass
class _ChildService:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    name = "service"

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 30.0) -> None:
        if self.running:
            return
        log_file = (self.data_dir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self._command(), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        log_file.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited at start; see {self.data_dir}")
            if self._ready():
                log.info("%s listening on 127.0.0.1:%d", self.name, self.port)
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.name} did not become ready in {timeout_s} s")

    def stop(self, kill: bool = False, timeout_s: float = 20.0) -> None:
        """Stop gracefully (SIGTERM: Mosquitto saves its persistence file), or SIGKILL."""
        if self.process is None:
            return
        stop_process(self.process, timeout_s=timeout_s, kill=kill)
        self.process = None
        deadline = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> _ChildService:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass
class Mosquitto(_ChildService):
    """A Mosquitto broker with persistence, so sessions and queued messages survive restarts.

    ``extra_config`` adds lines (a password file and ACL, for instance).
    """

    extra_config: str = ""
    allow_anonymous: bool = True
    name = "mosquitto"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    def _command(self) -> list[str]:
        persistence = self.data_dir / "persistence"
        persistence.mkdir(exist_ok=True)
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # Started as root (CI, containers), Mosquitto would drop to the 'mosquitto' user,
            # which cannot write persistence into a root-owned data folder. Ignored otherwise.
            "user root\n"
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}\n"
            "persistence true\n"
            f"persistence_location {persistence}/\n"
            "autosave_interval 5\n"
            # Unlimited queues for offline persistent sessions: the defaults (1000 messages)
            # would silently drop telemetry while a collector restarts.
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "persistent_client_expiration 2d\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{self.extra_config}\n"
        )
        return [_find_binary("mosquitto"), "-c", str(self.config_path)]

    def _ready(self) -> bool:
        return _port_open(self.port)


@dataclass
class InfluxDB(_ChildService):
    """An InfluxDB 1.x server (HTTP API on ``port``) with its data in ``data_dir``."""

    rpc_port: int = 0
    name = "influxd"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if not self.rpc_port:
            self.rpc_port = free_port()
        config = self.data_dir / "influxdb.conf"
        config.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{self.data_dir}/meta"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{self.data_dir}/data"\n  wal-dir = "{self.data_dir}/wal"\n'
            "  query-log-enabled = false\n  trace-logging-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "  max-body-size = 0\n"
            "[continuous_queries]\n  enabled = false\n"
        )
        return [_find_binary("influxd"), "-config", str(config)]

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False
