"""CJ/T 188 transactions on a link: one request out, its reply back, whatever else the line says.

A half-duplex M-Bus line carries the echo of our own request, FEH wake-up bytes, noise, late
replies of an earlier request and frames cut short. ``MeterBus.transact`` feeds everything to
one ``FrameReader`` and returns the first reply that matches the request: same address, same
function, and, for a normal reply, the same DI and SER. When the line goes quiet for
``gap_s`` with bytes still held, the reader is flushed (a frame that announced more bytes
than ever came must not hide a good reply behind it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.cjt188 import Frame, FrameReader, MeterModel, encode_frame
from gateway.cjt188.errors import Cjt188Error
from gateway.cjt188.messages import read_di
from gateway.links.base import Link

log = logging.getLogger(__name__)


class NoReplyError(TimeoutError):
    """No matching reply within the reply timeout."""


@dataclass
class MeterBusStats:
    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    stray_frames: int = 0


class MeterBus:
    """One CJ/T 188 conversation at a time on one link (callers serialise access)."""

    def __init__(self, link: Link, *, gap_s: float = 0.1,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.gap_s = gap_s
        self.reader = FrameReader()
        self.stats = MeterBusStats()
        self._monotonic = monotonic

    def transact(self, request: Frame, model: MeterModel, *, timeout_s: float) -> Frame:
        """Send ``request``; return the matching reply or raise ``NoReplyError``.

        Raises ``LinkError`` when the link itself fails.
        """
        self.link.discard_input()
        self.reader.flush()  # nothing from before this request belongs to it
        self.stats.requests += 1
        self.link.write(encode_frame(request, model.preamble))
        deadline = self._monotonic() + timeout_s
        while (remaining := deadline - self._monotonic()) > 0:
            chunk = self.link.read(min(remaining, self.gap_s))
            if chunk:
                frames = self.reader.feed(chunk)
            elif self.reader.pending:
                frames = self.reader.flush()
            else:
                continue
            for frame in frames:
                if _answers(request, frame, model):
                    self.stats.replies += 1
                    return frame
                self.stats.stray_frames += 1
                log.debug("%s: stray frame from %s C=%02XH ignored", self.link.name,
                          frame.address, frame.control)
        for frame in self.reader.flush():
            if _answers(request, frame, model):
                self.stats.replies += 1
                return frame
        self.stats.timeouts += 1
        raise NoReplyError(f"{self.link.name}: no reply from meter {request.address} "
                           f"within {timeout_s:g} s")


def _answers(request: Frame, reply: Frame, model: MeterModel) -> bool:
    if not reply.is_reply or reply.address != request.address:
        return False
    if reply.function != request.function:
        return False
    if reply.is_error:
        return True  # error replies carry no DI in the standard's form
    try:
        same_di = read_di(reply.data, model) == read_di(request.data, model)
    except Cjt188Error:
        return False
    return same_di and len(reply.data) > 2 and reply.data[2] == request.data[2]
