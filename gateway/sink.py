"""The seam inside the gateway: device pollers hand readings and events to the uplink.

Pollers (``gateway/links``, ``gateway/poller.py``) produce contract readings; the uplink
(``gateway/outbox.py``, ``gateway/uplink.py``) stores them on disk and publishes them. Neither
side knows the other's internals: they meet here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from common.contract import DeviceEvent, Reading


class ReadingSink(Protocol):
    """Where pollers put what they read. Must return quickly and never lose what it took."""

    def put_readings(self, readings: Sequence[Reading]) -> None: ...

    def put_events(self, events: Sequence[DeviceEvent]) -> None: ...


class DeviceController(Protocol):
    """What the uplink asks of the pollers when a command arrives from the bureau."""

    def poll_now(self, device: str | None) -> str:
        """Poll one device (or all) at once; return a short result for the command ack."""
        ...

    def set_valve(self, device: str, open_valve: bool) -> str:
        """Open or close a prepaid meter's valve; return the meter's answer."""
        ...
