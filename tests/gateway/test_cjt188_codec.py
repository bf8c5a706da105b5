"""CJ/T 188 codec: golden frames, every error path, and build/parse round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contract import MeterReading
from gateway.cjt188 import (
    DI_METERING,
    DI_VALVE,
    Cjt188BcdError,
    Cjt188ChecksumError,
    Cjt188Error,
    Cjt188FramingError,
    Cjt188LengthError,
    Cjt188MeterError,
    Cjt188TruncatedError,
    Cjt188UnsupportedError,
    Frame,
    MeteringData,
    MeterModelError,
    PurchaseData,
    ValveReply,
    VolumeUnit,
    checksum,
    decode_frame,
    decode_metering,
    decode_purchase,
    decode_reply,
    decode_request,
    decode_status,
    encode_frame,
    error_reply,
    get_model,
    load_model,
    metering_reply,
    metering_request,
    purchase_reply,
    purchase_request,
    shipped_models,
    status_word,
    to_meter_reading,
    valve_reply,
    valve_request,
)

DEFAULT = get_model("default")
VENDOR = get_model("vendor-b")
METER = "78330011223344"
WORKED_REQUEST = bytes.fromhex("68 10 44 33 22 11 00 33 78 01 03 1F 90 00 80 16")

# A 901F reply for meter 78330011223344, written out by hand, default model (DI 1F 90):
# SER 05; volume 12345.67 m3; settlement 12000.00 m3; clock 2026-07-01 08:30:15 with the year
# lowest byte first (26 20); ST1 05 = valve closed (D1D0 01) + low battery (D2); ST2 00.
HAND_REPLY = bytes.fromhex(
    "FE FE 68 10 44 33 22 11 00 33 78 81 16 1F 90 05"
    " 67 45 23 01 2C  00 00 20 01 2C  15 30 08 01 07 26 20  05 00  01 16"
)
# The same reading from a vendor-b meter: DI 90 1F, ST1 02 (closed in its layout), ST2 01
# (magnetic tamper).
VENDOR_REPLY = bytes.fromhex(
    "68 10 44 33 22 11 00 33 78 81 16 90 1F 05"
    " 67 45 23 01 2C  00 00 20 01 2C  15 30 08 01 07 26 20  02 01  FF 16"
)


# --------------------------------------------------------------------------- golden frames


def test_worked_request_is_built_byte_for_byte() -> None:
    assert encode_frame(metering_request(METER, DEFAULT)) == WORKED_REQUEST


def test_worked_request_checksum_is_the_sum_mod_256_from_68h_to_the_last_data_byte() -> None:
    assert checksum(WORKED_REQUEST[:-2]) == WORKED_REQUEST[-2] == 0x80


def test_worked_request_decodes_back_to_a_901f_read_for_that_meter() -> None:
    frame = decode_frame(WORKED_REQUEST)
    assert (frame.meter_type, frame.address, frame.control) == (0x10, METER, 0x01)
    request = decode_request(frame, DEFAULT)
    assert (request.di, request.ser, request.valve_open) == (DI_METERING, 0, None)


def test_vendor_model_sends_di_high_byte_first_after_its_preamble() -> None:
    raw = encode_frame(metering_request(METER, VENDOR, ser=7), preamble=VENDOR.preamble)
    assert raw == bytes.fromhex("FE FE FE FE 68 10 44 33 22 11 00 33 78 01 03 90 1F 07 87 16")


def test_hand_built_reply_decodes_volume_unit_clock_valve_and_battery() -> None:
    data = decode_metering(decode_frame(HAND_REPLY), DEFAULT)
    assert data.volume_m3 == Decimal("12345.67")
    assert data.settlement_volume_m3 == Decimal("12000.00")
    assert data.unit is VolumeUnit.CUBIC_METRE
    assert data.meter_clock == datetime(2026, 7, 1, 8, 30, 15)
    assert (data.valve, data.battery_low, data.tamper) == ("closed", True, False)
    assert (data.raw_status, data.ser) == (0x0005, 5)


def test_vendor_reply_with_swapped_di_decodes_with_its_status_bits() -> None:
    data = decode_metering(decode_frame(VENDOR_REPLY), VENDOR)
    assert data.volume_m3 == Decimal("12345.67")
    assert (data.valve, data.battery_low, data.tamper) == ("closed", False, True)


def test_either_di_order_parses_under_either_model() -> None:
    assert decode_metering(decode_frame(VENDOR_REPLY), DEFAULT).volume_m3 == Decimal("12345.67")
    assert decode_metering(decode_frame(HAND_REPLY), VENDOR).volume_m3 == Decimal("12345.67")


def test_published_2015_reply_reads_its_year_lowest_byte_first() -> None:
    # A reply reproduced in many CJ/T 188 write-ups; its clock bytes 31 01 22 11 05 15 20 are
    # 2015-05-11 22:01:31, which fixes the year's byte order.
    raw = bytes.fromhex("FE FE FE FE 68 10 44 33 22 11 00 33 78 81 16 1F 90 00 00 77 66 55 2C"
                        " 00 77 66 55 2C 31 01 22 11 05 15 20 21 84 13 16")
    data = decode_metering(decode_frame(raw), DEFAULT)
    assert data.volume_m3 == Decimal("556677.00")
    assert data.meter_clock == datetime(2015, 5, 11, 22, 1, 31)


def test_litre_unit_is_converted_to_cubic_metres() -> None:
    data = MeteringData(volume_m3=Decimal("1.23456"), settlement_volume_m3=Decimal("1"),
                        unit=VolumeUnit.LITRE, valve="open", battery_low=False, tamper=False,
                        raw_status=0)
    raw = encode_frame(metering_reply(METER, data, DEFAULT))
    assert raw[14:19] == bytes.fromhex("56 34 12 00 29")  # 1234.56 L
    assert decode_metering(decode_frame(raw), DEFAULT).volume_m3 == Decimal("1.23456")


def test_zero_or_impossible_clock_decodes_as_none_and_keeps_the_volume() -> None:
    for clock in ("00 00 00 00 00 00 00", "00 00 00 31 02 26 20", "9A 00 00 01 01 26 20"):
        payload = bytes.fromhex(f"1F 90 00 00 01 00 00 2C 00 01 00 00 2C {clock} 00 00")
        frame = Frame(meter_type=0x10, address=METER, control=0x81, data=payload)
        data = decode_metering(frame, DEFAULT)
        assert (data.meter_clock, data.volume_m3) == (None, Decimal("1.00"))


def test_purchase_request_and_reply_carry_number_amounts_and_balance() -> None:
    assert encode_frame(purchase_request(METER, DEFAULT))[11:14] == bytes.fromhex("05 81 00")
    body = bytes.fromhex("68 10 44 33 22 11 00 33 78 81 12 05 81 00 07"
                         " 00 50 00 00  00 50 12 00  00 25 01 00  04 00")
    data = decode_purchase(decode_frame(body + bytes([sum(body) & 0xFF, 0x16])), DEFAULT)
    assert data.purchase_number == 7
    assert data.last_purchase_yuan == Decimal("50.00")
    assert data.total_purchased_yuan == Decimal("1250.00")
    assert data.balance_yuan == Decimal("125.00")
    assert data.status is not None and data.status.battery_low


def test_valve_request_and_reply() -> None:
    close = encode_frame(valve_request(METER, DEFAULT, open_valve=False, ser=3))
    assert close[9:15] == bytes.fromhex("04 04 17 A0 03 99")
    assert decode_request(decode_frame(close), DEFAULT).valve_open is False
    reply = decode_reply(valve_reply(METER, DEFAULT, raw_status=0x0001, ser=3), DEFAULT)
    assert isinstance(reply, ValveReply)
    assert (reply.status.valve, reply.ser) == ("closed", 3)
    assert encode_frame(valve_reply(METER, VENDOR, raw_status=0))[11:13] == bytes([0xA0, 0x17])


def test_meter_error_reply_raises_with_its_status() -> None:
    frame = error_reply(METER, DEFAULT, function=0x01, raw_status=0x0003, ser=9)
    assert frame.control == 0xC1
    with pytest.raises(Cjt188MeterError) as caught:
        decode_reply(decode_frame(encode_frame(frame)), DEFAULT)
    assert caught.value.status == 0x0003


def test_reading_maps_to_a_valid_contract_meter_reading() -> None:
    data = decode_metering(decode_frame(HAND_REPLY), DEFAULT)
    purchase = PurchaseData(purchase_number=1, last_purchase_yuan=Decimal("20"),
                            total_purchased_yuan=Decimal("20"), balance_yuan=Decimal("3.50"))
    taken = datetime(2026, 7, 1, 0, 31, tzinfo=UTC)
    reading = to_meter_reading(data, device="m-0001", village="v01", dma="dma-v01", time=taken,
                               clock_tz=DEFAULT.clock_tz, purchase=purchase)
    assert isinstance(reading, MeterReading)
    assert (reading.volume_m3, reading.balance_yuan, reading.valve) == (12345.67, 3.5, "closed")
    assert reading.battery_low and reading.status == 5
    assert reading.meter_clock == datetime(2026, 7, 1, 0, 30, 15, tzinfo=UTC)


# --------------------------------------------------------------------------- errors


def test_a_wrong_checksum_raises_checksum_error() -> None:
    raw = bytearray(WORKED_REQUEST)
    raw[-2] ^= 0x01
    with pytest.raises(Cjt188ChecksumError):
        decode_frame(bytes(raw))


def test_any_flipped_byte_after_the_start_is_rejected() -> None:
    for index in range(1, len(HAND_REPLY) - 4):
        raw = bytearray(HAND_REPLY)
        raw[index + 2] ^= 0x10
        with pytest.raises(Cjt188Error):
            decode_frame(bytes(raw))


@pytest.mark.parametrize("cut", range(1, len(WORKED_REQUEST)))
def test_every_truncation_raises_truncated_error(cut: int) -> None:
    with pytest.raises(Cjt188TruncatedError):
        decode_frame(WORKED_REQUEST[:cut])


def test_length_byte_that_disagrees_with_the_frame_raises_length_error() -> None:
    for length in (0x02, 0x04):
        raw = bytearray(WORKED_REQUEST + b"\x00\x00")
        raw[10] = length
        with pytest.raises(Cjt188LengthError):
            decode_frame(bytes(raw))


def test_stray_bytes_after_the_end_raise_length_error() -> None:
    with pytest.raises(Cjt188LengthError):
        decode_frame(WORKED_REQUEST + b"\x00")


def test_missing_start_byte_raises_framing_error() -> None:
    with pytest.raises(Cjt188FramingError):
        decode_frame(b"\x00" + WORKED_REQUEST[1:])


def test_payload_of_the_wrong_size_for_its_di_raises_length_error() -> None:
    frame = decode_frame(HAND_REPLY)
    short = frame.model_copy(update={"data": frame.data[:-1]})
    with pytest.raises(Cjt188LengthError):
        decode_metering(short, DEFAULT)


def test_non_bcd_volume_raises_bcd_error() -> None:
    frame = decode_frame(HAND_REPLY)
    bad = frame.model_copy(update={"data": frame.data[:3] + b"\x6a" + frame.data[4:]})
    with pytest.raises(Cjt188BcdError):
        decode_metering(bad, DEFAULT)


def test_non_bcd_address_raises_bcd_error() -> None:
    body = bytearray(WORKED_REQUEST[:-2])
    body[2] = 0x4B
    with pytest.raises(Cjt188BcdError):
        decode_frame(bytes(body) + bytes([checksum(body), 0x16]))


def test_energy_unit_code_is_refused() -> None:
    frame = decode_frame(HAND_REPLY)
    bad = frame.model_copy(update={"data": frame.data[:7] + b"\x05" + frame.data[8:]})
    with pytest.raises(Cjt188UnsupportedError):
        decode_metering(bad, DEFAULT)


def test_unknown_di_is_refused() -> None:
    frame = Frame(meter_type=0x10, address=METER, control=0x81, data=b"\x12\x34\x00")
    with pytest.raises(Cjt188UnsupportedError):
        decode_reply(frame, DEFAULT)


# --------------------------------------------------------------------------- models


def test_shipped_models_load_with_their_differences() -> None:
    models = shipped_models()
    assert {"default", "vendor-b"} <= set(models)
    assert (models["default"].di_order, models["vendor-b"].di_order) == ("low_first",
                                                                         "high_first")
    assert models["default"].clock_tz == timezone(timedelta(hours=8))


def test_a_model_loads_from_json(tmp_path: Path) -> None:
    path = tmp_path / "acme.json"
    path.write_text(json.dumps({"name": "acme", "di_order": "high_first",
                                "status": {"tamper_bit": 9}}))
    model = load_model(path)
    assert decode_status(0x0200, model).tamper


def test_an_invalid_model_file_raises_model_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ndi_order: sideways\n")
    with pytest.raises(MeterModelError):
        load_model(path)


def test_status_word_round_trips_through_the_layout() -> None:
    for model in (DEFAULT, VENDOR):
        raw = status_word(model, valve="closed", battery_low=True,
                          tamper=model.status.tamper_bit is not None)
        status = decode_status(raw, model)
        assert (status.valve, status.battery_low) == ("closed", True)


# --------------------------------------------------------------------------- properties

addresses = st.lists(st.integers(0, 99), min_size=7, max_size=7).map(
    lambda pairs: "".join(f"{p:02d}" for p in pairs))
models = st.sampled_from([DEFAULT, VENDOR])
units = st.sampled_from(list(VolumeUnit))
hundredths = st.integers(0, 99_999_999)
clocks = st.none() | st.datetimes(min_value=datetime(2000, 1, 1),
                                  max_value=datetime(2099, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0))


def _volume(value: int, unit: VolumeUnit) -> Decimal:
    scale = Decimal("0.001") if unit is VolumeUnit.LITRE else Decimal(1)
    return Decimal(value).scaleb(-2) * scale


@given(addresses, models, hundredths, units, hundredths, units, clocks,
       st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 4))
def test_metering_reply_round_trips(address: str, model, volume: int, unit: VolumeUnit,
                                    settlement: int, settlement_unit: VolumeUnit,
                                    clock: datetime | None, raw_status: int, ser: int,
                                    preamble: int) -> None:
    status = decode_status(raw_status, model)
    data = MeteringData(
        volume_m3=_volume(volume, unit), settlement_volume_m3=_volume(settlement,
                                                                      settlement_unit),
        unit=unit, settlement_unit=settlement_unit, meter_clock=clock, valve=status.valve,
        battery_low=status.battery_low, tamper=status.tamper, raw_status=raw_status, ser=ser)
    raw = encode_frame(metering_reply(address, data, model), preamble=preamble)
    frame = decode_frame(raw)
    assert frame.address == address
    assert decode_metering(frame, model) == data


@given(addresses, models, st.integers(0, 99), hundredths, hundredths, hundredths,
       st.integers(0, 0xFFFF), st.integers(0, 255))
def test_purchase_reply_round_trips(address: str, model, number: int, last: int, total: int,
                                    balance: int, raw_status: int, ser: int) -> None:
    data = PurchaseData(purchase_number=number, last_purchase_yuan=Decimal(last).scaleb(-2),
                        total_purchased_yuan=Decimal(total).scaleb(-2),
                        balance_yuan=Decimal(balance).scaleb(-2),
                        status=decode_status(raw_status, model), ser=ser)
    frame = decode_frame(encode_frame(purchase_reply(address, data, model)))
    assert decode_purchase(frame, model) == data


@given(addresses, models, st.booleans(), st.integers(0, 255))
def test_requests_round_trip(address: str, model, open_valve: bool, ser: int) -> None:
    frame = decode_frame(encode_frame(valve_request(address, model, open_valve=open_valve,
                                                    ser=ser), preamble=model.preamble))
    request = decode_request(frame, model)
    assert (request.di, request.ser, request.valve_open) == (DI_VALVE, ser, open_valve)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_codec_errors(raw: bytes) -> None:
    try:
        frame = decode_frame(raw)
    except Cjt188Error:
        return
    for model in (DEFAULT, VENDOR):
        try:
            decode_reply(frame, model)
        except Cjt188Error:
            pass


@given(st.integers(0, 255), st.binary(max_size=255), models)
def test_random_data_fields_raise_only_codec_errors(control: int, data: bytes, model) -> None:
    frame = Frame(meter_type=0x10, address=METER, control=control, data=data)
    decoded = decode_frame(encode_frame(frame))
    assert decoded == frame
    for decode in (decode_reply, decode_request):
        try:
            decode(decoded, model)
        except Cjt188Error:
            pass


@given(st.sampled_from([b"\x1f\x90", b"\x90\x1f"]), st.binary(min_size=19, max_size=19))
def test_random_metering_payloads_raise_only_codec_errors(di: bytes, payload: bytes) -> None:
    frame = Frame(meter_type=0x10, address=METER, control=0x81, data=di + b"\x00" + payload)
    try:
        data = decode_metering(frame, DEFAULT)
    except Cjt188Error:
        return
    assert data.volume_m3 >= 0
