"""Pure conversions between raw Modbus registers and profile values, and to contract readings.

Word order and the 16/32-bit types go through pymodbus's own helpers
(``ModbusClientMixin.convert_from_registers`` / ``convert_to_registers``, pymodbus >= 3.9),
so the gateway reads values exactly as the Modbus stack it talks through would. Two things
they do not do for us: swap the two bytes inside a register (the "BADC"/"DCBA" layouts some
analysers use), so a point with ``byte_order: little`` has its registers byte-swapped around
the call; and split a multi-value list per value under ``word_order="little"`` (they reverse
the whole list, pymodbus issue #2675), so each point is converted on its own registers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymodbus.client.mixin import ModbusClientMixin

from common.contract import PumpReading, QualityReading, finite_or_none
from gateway.modbus_profiles.profile import (
    BIT_TABLES,
    READING_MODELS,
    DeviceProfile,
    ModbusProfileError,
    Order,
    Point,
    Table,
)

_DATATYPE = ModbusClientMixin.DATATYPE
_TYPES: Final = {
    "int16": _DATATYPE.INT16, "uint16": _DATATYPE.UINT16, "int32": _DATATYPE.INT32,
    "uint32": _DATATYPE.UINT32, "float32": _DATATYPE.FLOAT32,
}
_RANGES: Final = {
    "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
}
MAX_REGISTERS_PER_READ: Final = 125  # Modbus limit for FC 3/4
MAX_BITS_PER_READ: Final = 2000  # Modbus limit for FC 1/2

Value = bool | int | float


class RegisterError(ModbusProfileError):
    """Registers that cannot hold a point's value, or a value a point cannot hold."""


class BlockSpec(BaseModel):
    """One read: ``count`` registers (or bits) of ``table`` from ``start``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: Table
    start: int = Field(ge=0, le=0xFFFF)
    count: int = Field(ge=1, le=MAX_BITS_PER_READ)


class RegisterBlock(BaseModel):
    """What one read returned: 16-bit registers, or 0/1 for coils and discrete inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: Table
    start: int = Field(ge=0, le=0xFFFF)
    values: tuple[int, ...]

    def covers(self, point: Point) -> bool:
        return (point.table == self.table and point.address >= self.start
                and point.address + point.count <= self.start + len(self.values))


def _swap_bytes(registers: Sequence[int]) -> list[int]:
    return [(r >> 8) | ((r & 0xFF) << 8) for r in registers]


def decode_raw(registers: Sequence[int], data_type: str, *, word_order: Order = "big",
               byte_order: Order = "big") -> int | float:
    """Registers as an int16/uint16/int32/uint32/float32 number."""
    if data_type not in _TYPES:
        raise RegisterError(f"{data_type} is not a register type")
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise RegisterError(f"registers {list(registers)} are not all 16-bit")
    words = _swap_bytes(registers) if byte_order == "little" else list(registers)
    if len(words) != _TYPES[data_type].value[1]:
        raise RegisterError(f"{data_type} takes {_TYPES[data_type].value[1]} registers, "
                            f"got {len(words)}")
    value = ModbusClientMixin.convert_from_registers(words, _TYPES[data_type],
                                                     word_order=word_order)
    if not isinstance(value, int | float):  # pymodbus returns a union; numeric for these types
        raise RegisterError(f"pymodbus gave {type(value).__name__} for {data_type}")
    return value


def encode_raw(value: int | float, data_type: str, *, word_order: Order = "big",
               byte_order: Order = "big") -> list[int]:
    """The reverse of ``decode_raw``; integers out of the type's range are refused."""
    if data_type not in _TYPES:
        raise RegisterError(f"{data_type} is not a register type")
    if data_type in _RANGES:
        low, high = _RANGES[data_type]
        if not isinstance(value, int) or not low <= value <= high:
            raise RegisterError(f"{value!r} does not fit {data_type}")
    words = ModbusClientMixin.convert_to_registers(value, _TYPES[data_type],
                                                   word_order=word_order)
    return _swap_bytes(words) if byte_order == "little" else words


def decode_point(profile: DeviceProfile, point: Point, raw: Sequence[int]) -> Value:
    """One point's engineering value from its own registers (or bit)."""
    if len(raw) != point.count:
        raise RegisterError(f"{point.name} takes {point.count} values, got {len(raw)}")
    if point.table in BIT_TABLES:
        return bool(raw[0])
    if point.bit is not None:
        if not 0 <= raw[0] <= 0xFFFF:
            raise RegisterError(f"{point.name}: {raw[0]} is not a 16-bit register")
        return bool(raw[0] >> point.bit & 1)
    number = decode_raw(raw, point.type, word_order=profile.word_order_of(point),
                        byte_order=profile.byte_order_of(point))
    if point.type == "float32":
        return number * point.scale + point.offset
    if point.scale == 1 and point.offset == 0:
        return number  # counters and codes stay integers
    # A scaled integer has a few decimals: drop binary noise (0.35, not 0.35000000000000003).
    return round(number * point.scale + point.offset, 9)


def encode_point(profile: DeviceProfile, point: Point, value: Value) -> list[int]:
    """The registers (or the bit) a device shows for this engineering value."""
    if point.type == "bool":
        return [int(bool(value))]
    raw: float = (float(value) - point.offset) / point.scale
    if point.type == "float32":
        return encode_raw(raw, "float32", word_order=profile.word_order_of(point),
                          byte_order=profile.byte_order_of(point))
    if not math.isfinite(raw):
        raise RegisterError(f"{point.name}: {value!r} is not a number")
    return encode_raw(round(raw), point.type, word_order=profile.word_order_of(point),
                      byte_order=profile.byte_order_of(point))


def decode_block(profile: DeviceProfile, block: RegisterBlock) -> dict[str, Value]:
    """Every point the block holds whole, by contract field."""
    values: dict[str, Value] = {}
    for point in profile.points:
        if block.covers(point):
            offset = point.address - block.start
            values[point.field] = decode_point(profile, point,
                                               block.values[offset : offset + point.count])
    return values


def decode_blocks(profile: DeviceProfile, blocks: Sequence[RegisterBlock]) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for block in blocks:
        values.update(decode_block(profile, block))
    return values


def encode_image(profile: DeviceProfile,
                 values: Mapping[str, Value]) -> dict[Table, dict[int, int]]:
    """A device's register image for these values: table -> address -> register (or 0/1).

    Bit points sharing a register are OR-ed into it. For device simulators.
    """
    image: dict[Table, dict[int, int]] = {}
    for point in profile.points:
        if point.field not in values:
            continue
        table = image.setdefault(point.table, {})
        words = encode_point(profile, point, values[point.field])
        if point.bit is not None:
            current = table.get(point.address, 0) & ~(1 << point.bit)
            table[point.address] = current | words[0] << point.bit
            continue
        for index, word in enumerate(words):
            table[point.address + index] = word
    return image


def read_plan(profile: DeviceProfile, *, max_gap: int = 8) -> list[BlockSpec]:
    """The reads that cover every point: per table, nearby points merged into one request
    (gaps up to ``max_gap`` registers read and ignored), within the Modbus size limits."""
    plan: list[BlockSpec] = []
    for table in ("coil", "discrete", "holding", "input"):
        limit = MAX_BITS_PER_READ if table in BIT_TABLES else MAX_REGISTERS_PER_READ
        spans = sorted((p.address, p.address + p.count) for p in profile.points
                       if p.table == table)
        start: int | None = None
        end = 0
        for low, high in spans:
            if start is not None and low - end <= max_gap and max(end, high) - start <= limit:
                end = max(end, high)
                continue
            if start is not None:
                plan.append(BlockSpec(table=table, start=start, count=end - start))
            start, end = low, high
        if start is not None:
            plan.append(BlockSpec(table=table, start=start, count=end - start))
    return plan


def image_block(image: Mapping[str, Mapping[int, int]], spec: BlockSpec) -> RegisterBlock:
    """The block a read of ``spec`` returns from a register image (unset addresses read 0)."""
    table = image.get(spec.table, {})
    return RegisterBlock(table=spec.table, start=spec.start,
                         values=tuple(table.get(spec.start + i, 0) for i in range(spec.count)))


def to_reading(
    profile: DeviceProfile,
    values: Mapping[str, Value],
    *,
    device: str,
    village: str,
    dma: str | None,
    time: datetime,
) -> PumpReading | QualityReading:
    """The contract reading for decoded values. A NaN from an analyser is "not measured"."""
    fields: dict[str, object] = {"device": device, "village": village, "dma": dma, "time": time}
    for name, value in values.items():
        fields[name] = finite_or_none(value) if isinstance(value, float) else value
    try:
        return READING_MODELS[profile.kind].model_validate(fields)
    except ValidationError as exc:
        raise RegisterError(f"{profile.name} values do not make a {profile.kind} reading: "
                            f"{exc}") from exc
