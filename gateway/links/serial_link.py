"""A serial port (pyserial): M-Bus level converters and RS-485 adapters on the gateway."""

from __future__ import annotations

import logging
import time

import serial

from gateway.links.base import LinkError

log = logging.getLogger(__name__)


class SerialLink:
    """One serial line; ``port`` is a device (``/dev/ttyUSB0``) or any pyserial URL."""

    def __init__(self, port: str, *, baudrate: int = 2400, bytesize: int = 8,
                 parity: str = "E", stopbits: float = 1, poll_s: float = 0.02) -> None:
        self.port = port
        # The port timeout is set once at open: changing it re-applies every termios
        # setting, which some drivers (and ptys, with parity) refuse.
        self.poll_s = poll_s
        self._settings = {"baudrate": baudrate, "bytesize": bytesize, "parity": parity,
                          "stopbits": stopbits}
        self._serial: serial.SerialBase | None = None

    @property
    def name(self) -> str:
        return f"serial:{self.port}"

    def _opened(self) -> serial.SerialBase:
        if self._serial is None:
            try:
                self._serial = serial.serial_for_url(self.port, timeout=self.poll_s,
                                                     **self._settings)
            except (serial.SerialException, ValueError) as exc:
                raise LinkError(f"{self.name}: cannot open: {exc}") from exc
            log.info("%s opened %s", self.name, self._settings)
        return self._serial

    def write(self, data: bytes) -> None:
        port = self._opened()
        try:
            port.write(data)
            port.flush()
        except serial.SerialException as exc:
            self.close()
            raise LinkError(f"{self.name}: write failed: {exc}") from exc

    def read(self, timeout_s: float) -> bytes:
        port = self._opened()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                data = port.read(max(1, port.in_waiting))  # waits up to poll_s for a byte
                if data:
                    waiting = port.in_waiting
                    return data + port.read(waiting) if waiting else data
                if time.monotonic() >= deadline:
                    return b""
        except serial.SerialException as exc:
            self.close()
            raise LinkError(f"{self.name}: read failed: {exc}") from exc

    def discard_input(self) -> None:
        port = self._opened()
        try:
            port.reset_input_buffer()
        except serial.SerialException as exc:
            self.close()
            raise LinkError(f"{self.name}: reset failed: {exc}") from exc

    def close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None
