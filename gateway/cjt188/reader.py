"""Resynchronising CJ/T 188 frame reader for a noisy half-duplex serial stream.

Feed it bytes in whatever chunks the port hands over; it yields each valid frame once.
What a shared M-Bus or RS-485 line delivers besides replies: FEH wake-up bytes, line noise,
frames cut short when a meter browns out, bit errors (bad checksum), and the echo of our own
request on two-wire links. The reader:

- skips bytes until a 68H, then waits until the frame L announces is complete;
- accepts a candidate only if its 16H sits where L says, its checksum holds and its address
  is BCD (or AAH wildcards); a rejected candidate counts as one bad frame and the search
  resumes one byte after its 68H, so a good frame hidden inside a false or broken one is
  still found;
- rejects a candidate that holds a complete valid frame starting inside it: with an 8-bit
  additive checksum, a 68H in the middle of garbage or of a truncated frame can "validate"
  by chance over the top of the real frame that follows (about 1 in 65,536 false starts);
  the inner frame wins. An inner frame not yet complete is not waited for, so a good reply
  is never held back because its data happens to contain 68H;
- counts valid requests (our own echoes) apart and drops them unless asked to keep them.

At a line timeout or end of stream call ``flush()``: it resolves what is left, counting a
frame that never completed as bad and still finding any complete frame behind it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.cjt188.errors import Cjt188ChecksumError, Cjt188Error, Cjt188TruncatedError
from gateway.cjt188.frame import PREAMBLE, START, Frame, parse_at

log = logging.getLogger(__name__)


@dataclass
class ReaderStats:
    frames: int = 0
    echoes: int = 0
    bad_frames: int = 0
    checksum_errors: int = 0
    discarded_bytes: int = 0


class FrameReader:
    """Incremental frame decoder; one per serial line."""

    def __init__(self, *, keep_requests: bool = False) -> None:
        self._buffer = bytearray()
        self._keep_requests = keep_requests
        self.stats = ReaderStats()

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add bytes from the line; return the frames they complete."""
        self._buffer += chunk
        return self._scan(final=False)

    def flush(self) -> list[Frame]:
        """The line went quiet: resolve every byte held, waiting for nothing more."""
        frames = self._scan(final=True)
        self._buffer.clear()
        return frames

    def _scan(self, *, final: bool) -> list[Frame]:
        frames: list[Frame] = []
        position = 0
        buffer = self._buffer
        while True:
            start = buffer.find(START, position)
            skipped = buffer[position:] if start < 0 else buffer[position:start]
            self.stats.discarded_bytes += sum(1 for b in skipped if b != PREAMBLE)
            if start < 0:
                position = len(buffer)
                break
            try:
                frame, end = parse_at(buffer, start)
                self._check_no_inner_frame(start, end)
            except Cjt188TruncatedError:
                if not final:
                    position = start
                    break
                self._reject(start, Cjt188TruncatedError("never completed"))
                position = start + 1
                continue
            except Cjt188Error as exc:
                self._reject(start, exc)
                position = start + 1
                continue
            position = end
            self._accept(frame, frames)
        del buffer[:position]
        return frames

    def _check_no_inner_frame(self, start: int, end: int) -> None:
        inner = self._buffer.find(START, start + 1, end)
        while inner >= 0:
            try:
                parse_at(self._buffer, inner)
            except Cjt188Error:
                inner = self._buffer.find(START, inner + 1, end)
                continue
            raise _InnerFrameError(f"a valid frame starts {inner - start} bytes inside")

    def _reject(self, start: int, error: Cjt188Error) -> None:
        self.stats.bad_frames += 1
        if isinstance(error, Cjt188ChecksumError):
            self.stats.checksum_errors += 1
        log.debug("bad frame at buffer offset %d skipped: %s", start, error)

    def _accept(self, frame: Frame, frames: list[Frame]) -> None:
        if not frame.is_reply:
            self.stats.echoes += 1
            if not self._keep_requests:
                return
        self.stats.frames += 1
        frames.append(frame)


class _InnerFrameError(Cjt188Error):
    """A candidate frame with a complete valid frame inside it (see the module docstring)."""
