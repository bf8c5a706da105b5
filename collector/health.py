"""Where an operator reads the collector: ``/health`` (JSON) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

Snapshot = Callable[[], dict[str, Any]]


# Values that go up and down; every other number in the snapshot only ever grows.
GAUGES = frozenset({
    "mqtt_connected", "influx_up", "spool_batches", "spool_bytes", "queued_messages", "gaps",
    "lag_last_s", "lag_max_s",
})


def prometheus_text(snapshot: dict[str, Any]) -> str:
    """Prometheus text format 0.0.4: a TYPE line and a sample per numeric snapshot entry."""
    lines = []
    for name, value in snapshot.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            metric = f"ruralwater_collector_{name}"
            kind = "gauge" if name in GAUGES else "counter"
            lines.append(f"# TYPE {metric} {kind}")
            lines.append(f"{metric} {value}")
    return "\n".join(lines) + "\n"


class HealthServer:
    """A tiny HTTP server on its own thread; ``port`` 0 picks a free one."""

    def __init__(self, host: str, port: int, snapshot: Snapshot) -> None:
        outer_snapshot = snapshot

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                data = outer_snapshot()
                if self.path == "/health":
                    body = json.dumps(data, default=str).encode()
                    status = 200 if data.get("status") == "ok" else 503
                    self._reply(status, "application/json", body)
                elif self.path == "/metrics":
                    self._reply(200, "text/plain; version=0.0.4", prometheus_text(data).encode())
                else:
                    self._reply(404, "text/plain", b"try /health or /metrics\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug(format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="collector-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
