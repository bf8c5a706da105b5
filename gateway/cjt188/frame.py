"""The CJ/T 188 link frame: building and strict parsing of one frame.

Layout (every multi-byte field lowest byte first)::

    [FE ...] 68 T A0 A1 A2 A3 A4 A5 A6 C L DATA(L bytes) CS 16

- ``T`` meter type (10H cold water), ``A0..A6`` the 14-digit BCD address, lowest digits first,
  so meter 78330011223344 is sent ``44 33 22 11 00 33 78``; AAH in a byte is a wildcard and
  all-AAH the broadcast address.
- ``C`` control: D7 set in a reply, D6 set in an error reply, D5..D0 the function
  (01H read data, 04H write data, 03H read address, ...).
- ``CS`` is the sum mod 256 of every byte from 68H through the last data byte; the FE
  preamble is not summed.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.cjt188.bcd import bcd_byte, byte_value
from gateway.cjt188.errors import (
    Cjt188BcdError,
    Cjt188ChecksumError,
    Cjt188FramingError,
    Cjt188LengthError,
    Cjt188TruncatedError,
    Cjt188ValueError,
)

PREAMBLE: Final = 0xFE
START: Final = 0x68
END: Final = 0x16
WILDCARD: Final = 0xAA
HEADER_SIZE: Final = 11  # 68 T A0..A6 C L
OVERHEAD: Final = HEADER_SIZE + 2  # + CS 16
BROADCAST: Final = "AAAAAAAAAAAAAA"

CONTROL_REPLY: Final = 0x80
CONTROL_ERROR: Final = 0x40
FUNCTION_READ: Final = 0x01
FUNCTION_WRITE: Final = 0x04

#: A meter address as printed on the meter: 14 digits, highest first; "AA" marks a wildcard byte.
Address = Annotated[str, StringConstraints(pattern=r"^(?:[0-9]{2}|AA){7}$")]


class Frame(BaseModel):
    """One frame, without preamble and with the checksum already verified or still to compute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    meter_type: int = Field(ge=0, le=0xFF)
    address: Address
    control: int = Field(ge=0, le=0xFF)
    data: bytes = Field(default=b"", max_length=0xFF)

    @property
    def is_reply(self) -> bool:
        return bool(self.control & CONTROL_REPLY)

    @property
    def is_error(self) -> bool:
        return bool(self.control & CONTROL_ERROR)

    @property
    def function(self) -> int:
        return self.control & 0x3F


def checksum(body: bytes) -> int:
    """Sum mod 256 of the bytes from 68H through the last data byte."""
    return sum(body) & 0xFF


def address_to_wire(address: str) -> bytes:
    """``78330011223344`` -> ``44 33 22 11 00 33 78``."""
    if len(address) != 14:
        raise Cjt188ValueError(f"address {address!r} is not 14 digits")
    pairs = [address[i : i + 2] for i in range(0, 14, 2)]
    out = bytearray()
    for pair in reversed(pairs):
        if pair == "AA":
            out.append(WILDCARD)
        elif pair.isdigit() and pair.isascii():
            out.append(bcd_byte(int(pair)))
        else:
            raise Cjt188ValueError(f"address {address!r} has {pair!r}, not two digits or AA")
    return bytes(out)


def address_from_wire(raw: bytes) -> str:
    """The reverse of ``address_to_wire``; a non-BCD byte other than AAH is an error."""
    pairs = []
    for byte in reversed(raw):
        pairs.append("AA" if byte == WILDCARD else f"{byte_value(byte):02d}")
    return "".join(pairs)


def encode_frame(frame: Frame, preamble: int = 0) -> bytes:
    """The bytes of one frame, with ``preamble`` FEH wake-up bytes in front."""
    body = bytes([START, frame.meter_type]) + address_to_wire(frame.address)
    body += bytes([frame.control, len(frame.data)]) + frame.data
    return bytes([PREAMBLE]) * preamble + body + bytes([checksum(body), END])


def parse_at(buffer: bytes | bytearray, start: int) -> tuple[Frame, int]:
    """Parse the frame whose 68H is at ``start``; return it and the index just past its 16H.

    Raises ``Cjt188TruncatedError`` when the buffer ends before the frame does (more bytes may
    complete it) and another ``Cjt188Error`` when the bytes cannot be this frame.
    """
    if start >= len(buffer):
        raise Cjt188TruncatedError("no bytes")
    if buffer[start] != START:
        raise Cjt188FramingError(f"frame starts with {buffer[start]:02X}H, not 68H")
    if len(buffer) - start < HEADER_SIZE:
        raise Cjt188TruncatedError(f"{len(buffer) - start} bytes, a header needs {HEADER_SIZE}")
    length = buffer[start + HEADER_SIZE - 1]
    end = start + OVERHEAD + length
    if len(buffer) < end:
        raise Cjt188TruncatedError(f"L={length} needs {OVERHEAD + length} bytes, "
                                   f"{len(buffer) - start} present")
    if buffer[end - 1] != END:
        raise Cjt188LengthError(f"byte {OVERHEAD + length - 1} is {buffer[end - 1]:02X}H, "
                                 f"not 16H (length L={length} disagrees with the frame)")
    body = bytes(buffer[start : end - 2])
    expected = checksum(body)
    if buffer[end - 2] != expected:
        raise Cjt188ChecksumError(expected, buffer[end - 2])
    try:
        address = address_from_wire(body[2:9])
    except Cjt188BcdError as exc:
        raise Cjt188BcdError(f"address {body[2:9].hex(' ')}: {exc}") from exc
    frame = Frame(meter_type=body[1], address=address, control=body[9], data=body[HEADER_SIZE:])
    return frame, end


def decode_frame(raw: bytes) -> Frame:
    """Exactly one frame, optionally after FEH preamble bytes; anything else is an error."""
    start = 0
    while start < len(raw) and raw[start] == PREAMBLE:
        start += 1
    if start >= len(raw):
        raise Cjt188TruncatedError("no frame after the preamble")
    frame, end = parse_at(raw, start)
    if end != len(raw):
        raise Cjt188LengthError(f"{len(raw) - end} stray bytes after the 16H end byte")
    return frame
