"""The codec's own errors: every failure to build or parse a CJ/T 188 frame is a ``Cjt188Error``.

Callers (the serial link, the stream reader) catch ``Cjt188Error`` alone; nothing else escapes
the codec for any input bytes.
"""

from __future__ import annotations


class Cjt188Error(ValueError):
    """Base of every CJ/T 188 codec error."""


class Cjt188FramingError(Cjt188Error):
    """The bytes do not start with 68H (after any FEH preamble)."""


class Cjt188ChecksumError(Cjt188Error):
    """CS is not the sum mod 256 of every byte from 68H through the last data byte."""

    def __init__(self, expected: int, found: int) -> None:
        super().__init__(f"checksum {found:02X}H, the frame sums to {expected:02X}H")
        self.expected = expected
        self.found = found


class Cjt188TruncatedError(Cjt188Error):
    """Fewer bytes than the header (or L) announces."""


class Cjt188LengthError(Cjt188Error):
    """L disagrees with the bytes: no 16H where L puts the end, stray bytes after it, or a
    payload whose length does not fit its data identifier."""


class Cjt188BcdError(Cjt188Error):
    """A byte that must be BCD holds a nibble above 9."""


class Cjt188UnsupportedError(Cjt188Error):
    """A data identifier, unit code or control code this codec does not handle."""


class Cjt188ValueError(Cjt188Error):
    """A value that cannot be encoded (out of range, not representable in the field)."""


class Cjt188MeterError(Cjt188Error):
    """The meter answered with an error reply (control code D6 set)."""

    def __init__(self, control: int, status: int | None) -> None:
        detail = "no status" if status is None else f"status {status:04X}H (ST1 | ST2 << 8)"
        super().__init__(f"meter error reply, control {control:02X}H, {detail}")
        self.control = control
        self.status = status
