"""Modbus register profiles: type/word-order conversions and shipped profiles to readings."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contract import PumpReading, QualityReading
from gateway.modbus_profiles import (
    DeviceProfile,
    ModbusProfileError,
    RegisterBlock,
    RegisterError,
    decode_blocks,
    decode_raw,
    encode_image,
    encode_raw,
    get_profile,
    image_block,
    load_profile,
    read_plan,
    shipped_profiles,
    to_reading,
)

PUMP = get_profile("generic-vfd-pump")
ANALYSER = get_profile("generic-quality-analyser")
NOW = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
ORDERS = st.sampled_from(["big", "little"])
INT_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
              "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(("value", "data_type", "word", "byte", "registers"), [
    (1.5, "float32", "big", "big", [0x3FC0, 0x0000]),          # ABCD
    (1.5, "float32", "little", "big", [0x0000, 0x3FC0]),       # CDAB, word swap
    (1.5, "float32", "big", "little", [0xC03F, 0x0000]),       # BADC, byte swap
    (1.5, "float32", "little", "little", [0x0000, 0xC03F]),    # DCBA
    (-2, "int32", "big", "big", [0xFFFF, 0xFFFE]),
    (70000, "uint32", "little", "big", [0x1170, 0x0001]),
    (-1, "int16", "big", "big", [0xFFFF]),
    (0x1234, "uint16", "big", "little", [0x3412]),
])
def test_registers_match_hand_computed_layouts(value: float, data_type: str, word: str,
                                               byte: str, registers: list[int]) -> None:
    assert encode_raw(value, data_type, word_order=word, byte_order=byte) == registers
    assert decode_raw(registers, data_type, word_order=word, byte_order=byte) == value


@given(st.sampled_from(sorted(INT_RANGES)), st.data(), ORDERS, ORDERS)
def test_integers_round_trip_for_every_type_and_order(data_type: str, data: st.DataObject,
                                                      word: str, byte: str) -> None:
    value = data.draw(st.integers(*INT_RANGES[data_type]))
    registers = encode_raw(value, data_type, word_order=word, byte_order=byte)
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode_raw(registers, data_type, word_order=word, byte_order=byte) == value


@given(st.floats(width=32, allow_nan=False), ORDERS, ORDERS)
def test_float32_round_trips_for_every_order(value: float, word: str, byte: str) -> None:
    registers = encode_raw(value, "float32", word_order=word, byte_order=byte)
    assert decode_raw(registers, "float32", word_order=word, byte_order=byte) == value


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(RegisterError):
        encode_raw(70000, "int16")
    with pytest.raises(RegisterError):
        encode_raw(-1, "uint32")
    with pytest.raises(RegisterError):
        decode_raw([0x10000], "uint16")
    with pytest.raises(RegisterError):
        decode_raw([1], "float32")


# --------------------------------------------------------------------------- shipped profiles


def test_shipped_profiles_load() -> None:
    assert {"generic-vfd-pump", "generic-quality-analyser"} <= set(shipped_profiles())
    assert {p.function_code for p in PUMP.points} == {3}
    assert {p.function_code for p in ANALYSER.points} == {4}


def test_pump_registers_written_by_hand_map_to_a_pump_reading() -> None:
    blocks = [
        # status D0 running + D3 (not mapped); 48.50 Hz; 12.3 A; fault 0
        RegisterBlock(table="holding", start=0x1000, values=(0x0009, 4850, 123, 0)),
        # 0.350 MPa; 42.0 m3/h; level 35.27 m below ground
        RegisterBlock(table="holding", start=0x1010, values=(350, 420, 3527)),
        # 70,000 h, low word first
        RegisterBlock(table="holding", start=0x1020, values=(0x1170, 0x0001)),
    ]
    reading = to_reading(PUMP, decode_blocks(PUMP, blocks), device="well-01", village="v01",
                         dma=None, time=NOW)
    assert isinstance(reading, PumpReading)
    assert reading.running and reading.fault_code == 0
    assert (reading.frequency_hz, reading.current_a) == (48.5, 12.3)
    assert (reading.outlet_pressure_mpa, reading.flow_m3h, reading.well_level_m) == (0.35, 42.0,
                                                                                     35.27)
    assert reading.run_hours == 70000


def test_analyser_word_swapped_floats_map_to_a_quality_reading() -> None:
    # 0.5 NTU, 0.75 mg/L, pH 7.25, 512 uS/cm, 12.5 degC, each float32 low word first.
    registers = (0x0000, 0x3F00, 0x0000, 0x3F40, 0x0000, 0x40E8, 0x0000, 0x4400, 0x0000, 0x4148)
    values = decode_blocks(ANALYSER, [RegisterBlock(table="input", start=0, values=registers)])
    reading = to_reading(ANALYSER, values, device="qa-01", village="v01", dma="dma-v01", time=NOW)
    assert isinstance(reading, QualityReading)
    assert (reading.turbidity_ntu, reading.free_chlorine_mgl, reading.ph) == (0.5, 0.75, 7.25)
    assert (reading.conductivity_uscm, reading.temperature_c) == (512.0, 12.5)


def test_an_analyser_nan_is_not_measured_and_all_nan_is_refused() -> None:
    nan = encode_raw(math.nan, "float32", word_order="little")
    some = encode_image(ANALYSER, {"ph": 7.0})
    some["input"].update({0: nan[0], 1: nan[1]})
    blocks = [image_block(some, spec) for spec in read_plan(ANALYSER)]
    reading = to_reading(ANALYSER, decode_blocks(ANALYSER, blocks), device="qa-01",
                         village="v01", dma=None, time=NOW)
    assert reading.turbidity_ntu is None and reading.ph == 7.0
    all_nan = RegisterBlock(table="input", start=0, values=tuple(nan * 5))
    with pytest.raises(RegisterError):
        to_reading(ANALYSER, decode_blocks(ANALYSER, [all_nan]), device="qa-01",
                   village="v01", dma=None, time=NOW)


pump_values = st.fixed_dictionaries({
    "running": st.booleans(),
    "frequency_hz": st.integers(0, 5000).map(lambda v: v / 100),
    "current_a": st.integers(0, 2000).map(lambda v: v / 10),
    "fault_code": st.integers(0, 0xFFFF),
    "outlet_pressure_mpa": st.integers(0, 2000).map(lambda v: v / 1000),
    "flow_m3h": st.integers(0, 1000).map(lambda v: v / 10),
    "well_level_m": st.integers(-500, 20000).map(lambda v: v / 100),
    "run_hours": st.integers(0, 2**32 - 1),
})
quality_values = st.fixed_dictionaries({
    "turbidity_ntu": st.floats(0, 100, width=32),
    "free_chlorine_mgl": st.floats(0, 5, width=32),
    "ph": st.floats(0, 14, width=32),
    "conductivity_uscm": st.floats(0, 5000, width=32),
    "temperature_c": st.floats(-40, 80, width=32),
})


@given(st.one_of(st.tuples(st.just(PUMP), pump_values),
                 st.tuples(st.just(ANALYSER), quality_values)))
def test_shipped_profiles_round_trip_through_registers_to_valid_readings(
    case: tuple[DeviceProfile, dict[str, float]]
) -> None:
    profile, values = case
    image = encode_image(profile, values)
    decoded = decode_blocks(profile, [image_block(image, spec) for spec in read_plan(profile)])
    assert decoded == pytest.approx(values)
    reading = to_reading(profile, decoded, device="dev-1", village="v01", dma=None, time=NOW)
    assert reading.kind == profile.kind


# --------------------------------------------------------------------------- profile checks


def _profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("name: test\nkind: pump\npoints:\n" + body)
    return path


@pytest.mark.parametrize("points", [
    "  - {name: a, field: not_a_field, table: holding, address: 0}\n",
    "  - {name: a, field: flow_m3h, table: holding, address: 0, type: uint32}\n"
    "  - {name: b, field: current_a, table: holding, address: 1}\n",
    "  - {name: a, field: running, table: holding, address: 0, type: bool}\n",
    "  - {name: a, field: running, table: coil, address: 0, type: uint16}\n",
    "  - {name: a, field: flow_m3h, table: holding, address: 0}\n"
    "  - {name: b, field: flow_m3h, table: holding, address: 1}\n",
])
def test_inconsistent_profiles_are_refused(tmp_path: Path, points: str) -> None:
    with pytest.raises(ModbusProfileError):
        load_profile(_profile(tmp_path, points))


def test_bit_points_may_share_a_register_and_coils_read_as_bits(tmp_path: Path) -> None:
    profile = load_profile(_profile(tmp_path, (
        "  - {name: run, field: running, table: holding, address: 5, type: bool, bit: 0}\n"
        "  - {name: fault, field: fault_code, table: holding, address: 6}\n")))
    image = encode_image(profile, {"running": True, "fault_code": 7})
    assert image == {"holding": {5: 1, 6: 7}}
    coil = load_profile(_profile(tmp_path, (
        "  - {name: run, field: running, table: coil, address: 3, type: bool}\n")))
    assert decode_blocks(coil, [RegisterBlock(table="coil", start=0, values=(0, 0, 0, 1))]) == {
        "running": True}


def test_read_plan_splits_at_the_modbus_register_limit(tmp_path: Path) -> None:
    profile = load_profile(_profile(tmp_path, (
        "  - {name: a, field: flow_m3h, table: input, address: 0}\n"
        "  - {name: b, field: current_a, table: input, address: 100}\n"
        "  - {name: c, field: frequency_hz, table: input, address: 130, type: float32}\n")))
    plan = read_plan(profile, max_gap=200)
    assert [(s.start, s.count) for s in plan] == [(0, 101), (130, 2)]
