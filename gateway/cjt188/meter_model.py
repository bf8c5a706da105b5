"""Per-model settings of a CJ/T 188 meter, as data: DI byte order, clock year order, status bits.

Vendors disagree on the order of the two DI bytes and on where the status bits sit, so each
meter model is a ``MeterModel`` loaded from a YAML (or JSON) file in ``gateway/cjt188/models/``.
The status word is ``ST1 | ST2 << 8`` (the contract's ``MeterReading.status``), so a bit
position 0..7 is in ST1 and 8..15 in ST2.
"""

from __future__ import annotations

import logging
from datetime import timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.datafiles import load_directory, load_document

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).with_name("models")

ByteOrder = Literal["low_first", "high_first"]
ValveState = Literal["open", "closed", "fault"]
BitPosition = Annotated[int, Field(ge=0, le=15)]


class MeterModelError(ValueError):
    """A meter model file that cannot be read or does not describe a valid model."""


def _standard_valve_codes() -> dict[int, ValveState]:
    return {0b00: "open", 0b01: "closed", 0b11: "fault"}


class StatusLayout(BaseModel):
    """Where a model keeps valve state, low battery and tamper in ``ST1 | ST2 << 8``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    valve_shift: BitPosition = 0
    valve_mask: int = Field(default=0x03, ge=1, le=0xFF)
    # CJ/T 188 ST1 D1D0: 00 open, 01 closed, 11 fault.
    valve_codes: dict[int, ValveState] = Field(default_factory=_standard_valve_codes)
    # A code the model does not list: someone has to look at that valve.
    unknown_valve: ValveState = "fault"
    battery_low_bit: BitPosition | None = 2
    # ST2 is vendor-defined; the standard layout does not say where tamper sits.
    tamper_bit: BitPosition | None = None


class MeterModel(BaseModel):
    """One meter model's protocol variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    description: str = ""
    meter_type: int = Field(default=0x10, ge=0, le=0xFF)
    # "low_first" sends DI 901F as 1F 90 (the worked example in docs, CJ/T 188-2018);
    # "high_first" sends 90 1F (many CJ/T 188-2004 meters). Parsing accepts either.
    di_order: ByteOrder = "low_first"
    # The clock's year is two BCD bytes; the standard sends them lowest first (2015 = 15 20).
    clock_year_order: ByteOrder = "low_first"
    # Minutes east of UTC of the meter clock (Beijing time unless a county says otherwise).
    clock_utc_offset_minutes: int = Field(default=480, ge=-720, le=840)
    preamble: int = Field(default=2, ge=0, le=4, description="FEH bytes sent before a request")
    purchase_number_bytes: Literal[1, 2] = 1
    purchase_has_status: bool = True
    status: StatusLayout = Field(default_factory=StatusLayout)

    @property
    def clock_tz(self) -> timezone:
        return timezone(timedelta(minutes=self.clock_utc_offset_minutes))


def load_model(path: Path) -> MeterModel:
    """One model from a ``.yaml``/``.yml``/``.json`` file."""
    return load_document(path, MeterModel, MeterModelError, "meter model")


def load_models(directory: Path) -> dict[str, MeterModel]:
    """Every model file in ``directory``, by name; two files with one name is an error."""
    return load_directory(directory, MeterModel, MeterModelError, "meter model")


@lru_cache(maxsize=1)
def shipped_models() -> dict[str, MeterModel]:
    """The models shipped in ``gateway/cjt188/models/``."""
    return load_models(MODELS_DIR)


def get_model(name: str) -> MeterModel:
    """A shipped model by name."""
    try:
        return shipped_models()[name]
    except KeyError as exc:
        raise MeterModelError(
            f"no meter model {name!r}; shipped: {', '.join(sorted(shipped_models()))}"
        ) from exc
