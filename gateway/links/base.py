"""What every byte link offers a protocol driver."""

from __future__ import annotations

from typing import Protocol


class LinkError(OSError):
    """The link cannot carry bytes now (port missing, connection refused or dropped)."""


class LinkClosedError(LinkError):
    """The other end closed the connection."""


class Link(Protocol):
    """A half-duplex byte pipe to a device line. Opens itself on first use."""

    @property
    def name(self) -> str: ...

    def write(self, data: bytes) -> None:
        """Send all of ``data``; raise ``LinkError`` if the link is down."""
        ...

    def read(self, timeout_s: float) -> bytes:
        """Bytes that arrive within ``timeout_s``, as soon as there are any; b"" if none."""
        ...

    def discard_input(self) -> None:
        """Drop whatever already arrived (late replies of an earlier request)."""
        ...

    def close(self) -> None: ...
