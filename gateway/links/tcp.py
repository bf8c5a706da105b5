"""A serial-to-TCP converter: the line's bytes over one TCP connection."""

from __future__ import annotations

import logging
import select
import socket

from gateway.links.base import LinkClosedError, LinkError

log = logging.getLogger(__name__)


class TcpLink:
    """Raw TCP to a converter; connects lazily and again after the connection drops."""

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 5.0) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self._socket: socket.socket | None = None

    @property
    def name(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def _connected(self) -> socket.socket:
        if self._socket is None:
            try:
                sock = socket.create_connection((self.host, self.port),
                                                timeout=self.connect_timeout_s)
            except OSError as exc:
                raise LinkError(f"{self.name}: cannot connect: {exc}") from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log.info("%s connected", self.name)
            self._socket = sock
        return self._socket

    def write(self, data: bytes) -> None:
        sock = self._connected()
        try:
            sock.sendall(data)
        except OSError as exc:
            self.close()
            raise LinkError(f"{self.name}: send failed: {exc}") from exc

    def read(self, timeout_s: float) -> bytes:
        sock = self._connected()
        try:
            ready, _, _ = select.select([sock], [], [], max(0.0, timeout_s))
            if not ready:
                return b""
            data = sock.recv(4096)
        except OSError as exc:
            self.close()
            raise LinkError(f"{self.name}: receive failed: {exc}") from exc
        if not data:
            self.close()
            raise LinkClosedError(f"{self.name}: closed by the converter")
        return data

    def discard_input(self) -> None:
        if self._socket is None:
            return
        while self.read(0.0):
            pass

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
