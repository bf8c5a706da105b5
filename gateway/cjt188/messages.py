"""CJ/T 188 application data: requests, replies and their decoded values.

Data field of a request or normal reply: ``DI0 DI1 SER payload``. Layouts used here
(every multi-byte number BCD, lowest byte first):

- **901F read metering data** (C=01H, reply 81H, error C1H), reply payload 19 bytes:
  current cumulative volume 4 bytes XXXXXX.XX + unit byte; settlement-date volume, same form;
  meter clock 7 bytes ``ss mm hh DD MM YY YY``; ST1 ST2. The year's two bytes are lowest
  first like every other field (the published example ``31 01 22 11 05 15 20`` reads
  2015-05-11 22:01:31), so 2026 is sent ``26 20``; a model can say ``high_first``.
  A clock of all zeros (meters without a real-time clock) or an impossible date decodes as
  ``None``: the volume is still good, and one bad data point must not lose the rest.
- **Units** supported: 29H litre and 2CH cubic metre, the two volume units of the standard's
  unit table (its other codes, 02H Wh ... 35H m3/h, are energy, power and flow units for heat
  meters and are refused with ``Cjt188UnsupportedError``).
- **8105 purchase data** (C=01H, reply 81H): purchase number (1 BCD byte, or 2 for models
  that say so), last purchase amount, total purchased, remaining balance, each 4 bytes
  XXXXXX.XX yuan (the same fixed-point form as volumes, so 999,999.99 yuan at most), then
  ST1 ST2 unless the model says its purchase reply has no status.
- **A017 valve control** (C=04H, write), request payload 1 byte: 55H open, 99H close;
  normal reply (84H) ``DI SER ST1 ST2``.
- **Error replies** (D6 set, e.g. C1H): ``SER ST1 ST2`` (L=03H) as the standard lists, or
  ``DI SER ST1 ST2`` as some meters send; decoding one raises ``Cjt188MeterError``.

The DI byte order is per model when building; parsing accepts either order.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from decimal import Decimal
from enum import IntEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.contract import MeterReading
from gateway.cjt188.bcd import (
    bcd_byte,
    byte_value,
    decode_fixed,
    decode_uint,
    encode_fixed,
    encode_uint,
)
from gateway.cjt188.errors import (
    Cjt188BcdError,
    Cjt188LengthError,
    Cjt188MeterError,
    Cjt188UnsupportedError,
    Cjt188ValueError,
)
from gateway.cjt188.frame import (
    CONTROL_ERROR,
    CONTROL_REPLY,
    FUNCTION_READ,
    FUNCTION_WRITE,
    Frame,
)
from gateway.cjt188.meter_model import MeterModel, ValveState

log = logging.getLogger(__name__)

DI_METERING: Final = 0x901F
DI_PURCHASE: Final = 0x8105
DI_VALVE: Final = 0xA017
KNOWN_DIS: Final = frozenset({DI_METERING, DI_PURCHASE, DI_VALVE})
VALVE_OPEN: Final = 0x55
VALVE_CLOSE: Final = 0x99
METERING_PAYLOAD: Final = 19
CLOCK_SIZE: Final = 7
AMOUNT_SIZE: Final = 4

Ser = Annotated[int, Field(ge=0, le=0xFF)]
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("999999.99"))]
Status = Annotated[int, Field(ge=0, le=0xFFFF)]


class VolumeUnit(IntEnum):
    """Volume unit codes of the CJ/T 188 unit table."""

    LITRE = 0x29
    CUBIC_METRE = 0x2C


_M3_PER_UNIT: Final = {VolumeUnit.LITRE: Decimal("0.001"), VolumeUnit.CUBIC_METRE: Decimal(1)}


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterStatus(_Value):
    """ST1 ST2 read through a model's status layout."""

    valve: ValveState
    battery_low: bool
    tamper: bool
    raw: Status


class MeteringData(_Value):
    """DI 901F: what a meter answers to "read metering data"."""

    volume_m3: Decimal = Field(ge=0)
    settlement_volume_m3: Decimal = Field(ge=0)
    unit: VolumeUnit = VolumeUnit.CUBIC_METRE
    settlement_unit: VolumeUnit = VolumeUnit.CUBIC_METRE
    meter_clock: datetime | None = Field(default=None, description="meter local time, naive")
    valve: ValveState
    battery_low: bool
    tamper: bool
    raw_status: Status
    ser: Ser = 0


class PurchaseData(_Value):
    """DI 8105: the prepaid account held in the meter, in yuan."""

    purchase_number: int = Field(ge=0, le=9999)
    last_purchase_yuan: Amount
    total_purchased_yuan: Amount
    balance_yuan: Amount
    status: MeterStatus | None = None
    ser: Ser = 0


class ValveReply(_Value):
    """DI A017: the meter's acknowledgement of a valve command."""

    status: MeterStatus
    ser: Ser = 0


class Request(_Value):
    """A request as a meter (or the simulator playing one) sees it."""

    di: int
    ser: Ser
    valve_open: bool | None = None


# --------------------------------------------------------------------------- status


def decode_status(raw: int, model: MeterModel) -> MeterStatus:
    layout = model.status
    code = (raw >> layout.valve_shift) & layout.valve_mask
    valve = layout.valve_codes.get(code, layout.unknown_valve)
    battery = layout.battery_low_bit is not None and bool(raw >> layout.battery_low_bit & 1)
    tamper = layout.tamper_bit is not None and bool(raw >> layout.tamper_bit & 1)
    return MeterStatus(valve=valve, battery_low=battery, tamper=tamper, raw=raw)


def status_word(
    model: MeterModel, *, valve: ValveState, battery_low: bool = False, tamper: bool = False
) -> int:
    """The ``ST1 | ST2 << 8`` a meter of this model sends for these conditions."""
    layout = model.status
    codes = [code for code, state in sorted(layout.valve_codes.items()) if state == valve]
    if not codes:
        raise Cjt188ValueError(f"model {model.name!r} has no valve code for {valve!r}")
    raw = codes[0] << layout.valve_shift
    for wanted, bit, what in ((battery_low, layout.battery_low_bit, "low battery"),
                              (tamper, layout.tamper_bit, "tamper")):
        if wanted and bit is None:
            raise Cjt188ValueError(f"model {model.name!r} has no {what} bit")
        if wanted and bit is not None:
            raw |= 1 << bit
    return raw


# --------------------------------------------------------------------------- fields


def di_bytes(di: int, model: MeterModel) -> bytes:
    return di.to_bytes(2, "little" if model.di_order == "low_first" else "big")


def read_di(data: bytes, model: MeterModel) -> int:
    """The DI at the start of a data field, in the model's byte order or else the other one."""
    if len(data) < 2:
        raise Cjt188LengthError(f"data field of {len(data)} bytes has no DI")
    orders: tuple[Literal["little", "big"], ...] = ("little", "big")
    if model.di_order == "high_first":
        orders = orders[::-1]
    for order in orders:
        di = int.from_bytes(data[:2], order)
        if di in KNOWN_DIS:
            return di
    raise Cjt188UnsupportedError(f"unknown data identifier {data[:2].hex(' ')}")


def _volume(raw: bytes, field: str) -> tuple[Decimal, VolumeUnit]:
    try:
        unit = VolumeUnit(raw[4])
    except ValueError as exc:
        raise Cjt188UnsupportedError(f"{field}: unit code {raw[4]:02X}H is not a volume "
                                     "unit (29H L, 2CH m3)") from exc
    value = decode_fixed(raw[:4], 2) * _M3_PER_UNIT[unit]
    return value, unit


def _encode_volume(volume_m3: Decimal, unit: VolumeUnit) -> bytes:
    return encode_fixed(volume_m3 / _M3_PER_UNIT[unit], AMOUNT_SIZE, 2) + bytes([unit])


def decode_clock(raw: bytes, model: MeterModel) -> datetime | None:
    """Seven BCD bytes ``ss mm hh DD MM YY YY``; None for a zero or impossible clock."""
    if not any(raw):
        return None
    try:
        second, minute, hour, day, month = (byte_value(b) for b in raw[:5])
        year_bytes = raw[5:7] if model.clock_year_order == "low_first" else raw[6:4:-1]
        year = decode_uint(year_bytes)
        return datetime(year, month, day, hour, minute, second)
    except (Cjt188BcdError, ValueError) as exc:
        log.debug("meter clock %s unusable: %s", raw.hex(" "), exc)
        return None


def encode_clock(moment: datetime | None, model: MeterModel) -> bytes:
    if moment is None:
        return bytes(CLOCK_SIZE)
    head = bytes(bcd_byte(v) for v in (moment.second, moment.minute, moment.hour,
                                       moment.day, moment.month))
    year = encode_uint(moment.year, 2)
    return head + (year if model.clock_year_order == "low_first" else year[::-1])


def _status_bytes(raw: int) -> bytes:
    return raw.to_bytes(2, "little")


# --------------------------------------------------------------------------- requests


def _request(address: str, model: MeterModel, function: int, di: int, ser: int,
             payload: bytes = b"") -> Frame:
    if not 0 <= ser <= 0xFF:
        raise Cjt188ValueError(f"SER {ser} is not one byte")
    return Frame(meter_type=model.meter_type, address=address, control=function,
                 data=di_bytes(di, model) + bytes([ser]) + payload)


def metering_request(address: str, model: MeterModel, ser: int = 0) -> Frame:
    """Read metering data (C=01H, DI 901F)."""
    return _request(address, model, FUNCTION_READ, DI_METERING, ser)


def purchase_request(address: str, model: MeterModel, ser: int = 0) -> Frame:
    """Read purchase data (C=01H, DI 8105)."""
    return _request(address, model, FUNCTION_READ, DI_PURCHASE, ser)


def valve_request(address: str, model: MeterModel, *, open_valve: bool, ser: int = 0) -> Frame:
    """Valve control (C=04H, DI A017, 55H open / 99H close)."""
    command = VALVE_OPEN if open_valve else VALVE_CLOSE
    return _request(address, model, FUNCTION_WRITE, DI_VALVE, ser, bytes([command]))


def decode_request(frame: Frame, model: MeterModel) -> Request:
    """What a request asks for; the meter side of the conversation (simulators, tests)."""
    if frame.is_reply:
        raise Cjt188UnsupportedError(f"control {frame.control:02X}H is a reply, not a request")
    di = read_di(frame.data, model)
    expected = FUNCTION_WRITE if di == DI_VALVE else FUNCTION_READ
    if frame.function != expected:
        raise Cjt188UnsupportedError(f"DI {di:04X} with control {frame.control:02X}H")
    size = 4 if di == DI_VALVE else 3
    if len(frame.data) != size:
        raise Cjt188LengthError(f"DI {di:04X} request has {len(frame.data)} data bytes, "
                                f"not {size}")
    valve_open = None
    if di == DI_VALVE:
        if frame.data[3] not in (VALVE_OPEN, VALVE_CLOSE):
            raise Cjt188UnsupportedError(f"valve command {frame.data[3]:02X}H")
        valve_open = frame.data[3] == VALVE_OPEN
    return Request(di=di, ser=frame.data[2], valve_open=valve_open)


# --------------------------------------------------------------------------- replies


def _reply(address: str, model: MeterModel, function: int, di: int, ser: int,
           payload: bytes) -> Frame:
    return Frame(meter_type=model.meter_type, address=address, control=CONTROL_REPLY | function,
                 data=di_bytes(di, model) + bytes([ser]) + payload)


def metering_reply(address: str, data: MeteringData, model: MeterModel) -> Frame:
    payload = (_encode_volume(data.volume_m3, data.unit)
               + _encode_volume(data.settlement_volume_m3, data.settlement_unit)
               + encode_clock(data.meter_clock, model) + _status_bytes(data.raw_status))
    return _reply(address, model, FUNCTION_READ, DI_METERING, data.ser, payload)


def purchase_reply(address: str, data: PurchaseData, model: MeterModel) -> Frame:
    payload = encode_uint(data.purchase_number, model.purchase_number_bytes)
    for amount in (data.last_purchase_yuan, data.total_purchased_yuan, data.balance_yuan):
        payload += encode_fixed(amount, AMOUNT_SIZE, 2)
    if model.purchase_has_status:
        if data.status is None:
            raise Cjt188ValueError(f"model {model.name!r} sends a status with purchase data")
        payload += _status_bytes(data.status.raw)
    return _reply(address, model, FUNCTION_READ, DI_PURCHASE, data.ser, payload)


def valve_reply(address: str, model: MeterModel, *, raw_status: int, ser: int = 0) -> Frame:
    return _reply(address, model, FUNCTION_WRITE, DI_VALVE, ser, _status_bytes(raw_status))


def error_reply(address: str, model: MeterModel, *, function: int, raw_status: int,
                ser: int = 0) -> Frame:
    """The standard's error reply: C = C0H | function, data ``SER ST1 ST2``."""
    return Frame(meter_type=model.meter_type, address=address,
                 control=CONTROL_REPLY | CONTROL_ERROR | function,
                 data=bytes([ser]) + _status_bytes(raw_status))


def _raise_meter_error(frame: Frame) -> None:
    data = frame.data
    status = None
    if len(data) in (3, 5):
        status = int.from_bytes(data[-2:], "little")
    raise Cjt188MeterError(frame.control, status)


def _expect_size(di: int, payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise Cjt188LengthError(f"DI {di:04X} reply has {len(payload)} payload bytes, "
                                f"not {size}")


def _decode_metering(payload: bytes, ser: int, model: MeterModel) -> MeteringData:
    _expect_size(DI_METERING, payload, METERING_PAYLOAD)
    volume, unit = _volume(payload[0:5], "current volume")
    settlement, settlement_unit = _volume(payload[5:10], "settlement-date volume")
    status = decode_status(int.from_bytes(payload[17:19], "little"), model)
    return MeteringData(
        volume_m3=volume, settlement_volume_m3=settlement, unit=unit,
        settlement_unit=settlement_unit, meter_clock=decode_clock(payload[10:17], model),
        valve=status.valve, battery_low=status.battery_low, tamper=status.tamper,
        raw_status=status.raw, ser=ser,
    )


def _decode_purchase(payload: bytes, ser: int, model: MeterModel) -> PurchaseData:
    number_size = model.purchase_number_bytes
    size = number_size + 3 * AMOUNT_SIZE + (2 if model.purchase_has_status else 0)
    _expect_size(DI_PURCHASE, payload, size)
    amounts = [decode_fixed(payload[i : i + AMOUNT_SIZE], 2)
               for i in range(number_size, number_size + 3 * AMOUNT_SIZE, AMOUNT_SIZE)]
    status = None
    if model.purchase_has_status:
        status = decode_status(int.from_bytes(payload[-2:], "little"), model)
    return PurchaseData(
        purchase_number=decode_uint(payload[:number_size]), last_purchase_yuan=amounts[0],
        total_purchased_yuan=amounts[1], balance_yuan=amounts[2], status=status, ser=ser,
    )


def decode_reply(frame: Frame, model: MeterModel) -> MeteringData | PurchaseData | ValveReply:
    """The value a meter's reply carries; an error reply raises ``Cjt188MeterError``."""
    if not frame.is_reply:
        raise Cjt188UnsupportedError(f"control {frame.control:02X}H is a request, not a reply")
    if frame.is_error:
        _raise_meter_error(frame)
    di = read_di(frame.data, model)
    expected = FUNCTION_WRITE if di == DI_VALVE else FUNCTION_READ
    if frame.function != expected:
        raise Cjt188UnsupportedError(f"DI {di:04X} in a reply with control {frame.control:02X}H")
    if len(frame.data) < 3:
        raise Cjt188LengthError("reply has no SER byte")
    ser, payload = frame.data[2], frame.data[3:]
    if di == DI_METERING:
        return _decode_metering(payload, ser, model)
    if di == DI_PURCHASE:
        return _decode_purchase(payload, ser, model)
    _expect_size(DI_VALVE, payload, 2)
    return ValveReply(status=decode_status(int.from_bytes(payload, "little"), model), ser=ser)


def decode_metering(frame: Frame, model: MeterModel) -> MeteringData:
    value = decode_reply(frame, model)
    if not isinstance(value, MeteringData):
        raise Cjt188UnsupportedError(f"expected a 901F reply, got {type(value).__name__}")
    return value


def decode_purchase(frame: Frame, model: MeterModel) -> PurchaseData:
    value = decode_reply(frame, model)
    if not isinstance(value, PurchaseData):
        raise Cjt188UnsupportedError(f"expected an 8105 reply, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- contract


def to_meter_reading(
    data: MeteringData,
    *,
    device: str,
    village: str,
    dma: str | None,
    time: datetime,
    clock_tz: tzinfo,
    purchase: PurchaseData | None = None,
) -> MeterReading:
    """The wire-contract reading for one 901F answer (and, if read too, the 8105 balance).

    ``clock_tz`` is the zone the meter clock runs in (``MeterModel.clock_tz``).
    """
    return MeterReading(
        device=device, village=village, dma=dma, time=time,
        volume_m3=float(data.volume_m3),
        balance_yuan=None if purchase is None else float(purchase.balance_yuan),
        valve=data.valve, battery_low=data.battery_low, tamper=data.tamper,
        status=data.raw_status,
        meter_clock=None if data.meter_clock is None else data.meter_clock.replace(
            tzinfo=clock_tz),
    )
