"""Packed BCD helpers. CJ/T 188 sends every multi-byte field lowest byte first."""

from __future__ import annotations

from decimal import Decimal

from gateway.cjt188.errors import Cjt188BcdError, Cjt188ValueError


def bcd_byte(value: int) -> int:
    """0..99 as one packed BCD byte."""
    if not 0 <= value <= 99:
        raise Cjt188ValueError(f"{value} does not fit one BCD byte (0..99)")
    return (value // 10) << 4 | value % 10


def byte_value(byte: int) -> int:
    """One packed BCD byte as 0..99."""
    high, low = byte >> 4, byte & 0x0F
    if high > 9 or low > 9:
        raise Cjt188BcdError(f"{byte:02X}H is not a BCD byte")
    return high * 10 + low


def decode_uint(data: bytes) -> int:
    """Unsigned BCD integer, lowest byte first."""
    value = 0
    for byte in reversed(data):
        value = value * 100 + byte_value(byte)
    return value


def encode_uint(value: int, size: int) -> bytes:
    """Unsigned integer as ``size`` BCD bytes, lowest byte first."""
    if value < 0 or value >= 100**size:
        raise Cjt188ValueError(f"{value} does not fit {size} BCD bytes")
    out = bytearray()
    for _ in range(size):
        value, pair = divmod(value, 100)
        out.append(bcd_byte(pair))
    return bytes(out)


def decode_fixed(data: bytes, decimals: int) -> Decimal:
    """BCD with an implied decimal point, e.g. 4 bytes XXXXXX.XX for ``decimals=2``."""
    return Decimal(decode_uint(data)).scaleb(-decimals)


def encode_fixed(value: Decimal, size: int, decimals: int) -> bytes:
    """The reverse of ``decode_fixed``; refuses values with more decimals than the field has."""
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise Cjt188ValueError(f"{value} has more than {decimals} decimals")
    return encode_uint(int(scaled), size)
