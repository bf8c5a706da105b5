"""Modbus register profiles as data: which registers a device model uses and how to read them.

A profile is a YAML (or JSON) file in ``gateway/modbus_profiles/profiles/``::

    name: generic-vfd            # profile id
    kind: pump                   # which contract reading it produces (pump | quality)
    word_order: big              # default for 32-bit points: big = high word first
    byte_order: big              # default within each register: big = Modbus standard
    points:
      - name: output_frequency   # the device's name for the point
        field: frequency_hz      # the contract field it fills
        table: holding           # holding (FC 3) | input (FC 4) | coil (FC 1) | discrete (FC 2)
        address: 0x1001          # 0-based protocol address
        type: uint16             # bool | int16 | uint16 | int32 | uint32 | float32
        scale: 0.01              # value = raw * scale + offset
        unit: Hz

A ``bool`` point reads a coil or discrete input, or one ``bit`` of a holding/input register;
several bit points may share a register. ``word_order`` and ``byte_order`` on a point override
the profile's.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from common.contract import PumpReading, QualityReading
from gateway.datafiles import load_directory, load_document

PROFILES_DIR = Path(__file__).with_name("profiles")

Table = Literal["holding", "input", "coil", "discrete"]
DataType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32"]
Order = Literal["big", "little"]
Kind = Literal["pump", "quality"]

FUNCTION_CODES: Final[dict[str, int]] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
BIT_TABLES: Final = frozenset({"coil", "discrete"})
REGISTER_COUNT: Final[dict[str, int]] = {
    "bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2,
}
READING_MODELS: Final[dict[str, type[PumpReading] | type[QualityReading]]] = {
    "pump": PumpReading, "quality": QualityReading,
}
_IDENTITY: Final = frozenset({"kind", "device", "time", "village", "dma"})


class ModbusProfileError(ValueError):
    """A profile that cannot be read or is inconsistent, or registers that do not fit it."""


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    field: str
    table: Table
    address: int = Field(ge=0, le=0xFFFF)
    type: DataType = "uint16"
    bit: int | None = Field(default=None, ge=0, le=15)
    word_order: Order | None = None
    byte_order: Order | None = None
    scale: float = Field(default=1.0, allow_inf_nan=False)
    offset: float = Field(default=0.0, allow_inf_nan=False)
    unit: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        if self.scale == 0:
            raise ValueError(f"{self.name}: scale 0 loses the value")
        if self.table in BIT_TABLES and (self.type != "bool" or self.bit is not None):
            raise ValueError(f"{self.name}: a {self.table} point is type bool without bit")
        if self.table not in BIT_TABLES and (self.type == "bool") != (self.bit is not None):
            raise ValueError(f"{self.name}: in a register, type bool needs a bit and a bit "
                             "needs type bool")
        if self.address + self.count - 1 > 0xFFFF:
            raise ValueError(f"{self.name}: runs past address FFFFH")
        return self

    @property
    def function_code(self) -> int:
        return FUNCTION_CODES[self.table]

    @property
    def count(self) -> int:
        """Registers (or bits) the point occupies."""
        return REGISTER_COUNT[self.type]


class DeviceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    kind: Kind
    description: str = ""
    word_order: Order = "big"
    byte_order: Order = "big"
    points: list[Point] = Field(min_length=1)

    @model_validator(mode="after")
    def _fields_and_addresses(self) -> DeviceProfile:
        model = READING_MODELS[self.kind]
        allowed = set(model.model_fields) - _IDENTITY
        seen: set[str] = set()
        for point in self.points:
            if point.field not in allowed:
                raise ValueError(f"{point.name}: {point.field!r} is not a {self.kind} reading "
                                 f"field ({', '.join(sorted(allowed))})")
            if point.field in seen:
                raise ValueError(f"field {point.field!r} is filled by two points")
            seen.add(point.field)
        self._check_overlaps()
        return self

    def _check_overlaps(self) -> None:
        owner: dict[tuple[str, int], Point] = {}
        for point in self.points:
            for address in range(point.address, point.address + point.count):
                other = owner.get((point.table, address))
                shared_bits = other is not None and other.bit is not None and point.bit is not None
                if other is not None and not (shared_bits and other.bit != point.bit):
                    raise ValueError(f"{point.name} and {other.name} overlap at "
                                     f"{point.table} {address}")
                owner[(point.table, address)] = point

    def word_order_of(self, point: Point) -> Order:
        return point.word_order or self.word_order

    def byte_order_of(self, point: Point) -> Order:
        return point.byte_order or self.byte_order


def load_profile(path: Path) -> DeviceProfile:
    return load_document(path, DeviceProfile, ModbusProfileError, "profile")


def load_profiles(directory: Path) -> dict[str, DeviceProfile]:
    return load_directory(directory, DeviceProfile, ModbusProfileError, "profile")


@lru_cache(maxsize=1)
def shipped_profiles() -> dict[str, DeviceProfile]:
    """The profiles shipped in ``gateway/modbus_profiles/profiles/``."""
    return load_profiles(PROFILES_DIR)


def get_profile(name: str) -> DeviceProfile:
    try:
        return shipped_profiles()[name]
    except KeyError as exc:
        raise ModbusProfileError(
            f"no profile {name!r}; shipped: {', '.join(sorted(shipped_profiles()))}"
        ) from exc
