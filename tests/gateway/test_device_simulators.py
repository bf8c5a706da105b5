"""The device simulators speak the real protocols over real sockets, from the county physics."""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from common.localservices import free_port
from gateway.cjt188 import (
    Frame,
    FrameReader,
    decode_metering,
    decode_purchase,
    decode_reply,
    encode_frame,
    get_model,
    metering_request,
    purchase_request,
    valve_request,
)
from gateway.devices import (
    MeterBankServer,
    ModbusDeviceServer,
    SimulatedField,
    SimulatedModbusDevice,
)
from gateway.modbus_profiles import RegisterBlock, decode_blocks, get_profile, read_plan
from gateway.poller import build_pollers
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident

START = datetime(2026, 7, 1, tzinfo=UTC)
MODEL = get_model("default")


@pytest.fixture
def field() -> SimulatedField:
    county_field = SimulatedField.build(seed=11, villages=1, households_per_village=6,
                                        start=START)
    county_field.advance(6)
    return county_field


@pytest.fixture
def bank(field: SimulatedField) -> Iterator[MeterBankServer]:
    meters = [h.meter for h in field.county.households]
    with MeterBankServer(field, meters, MODEL) as server:
        yield server


def exchange(port: int, request: Frame, *, wait_s: float = 2.0) -> Frame | None:
    """Send one request over a plain socket; the first reply frame, or None if none comes."""
    reader = FrameReader()
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(encode_frame(request, MODEL.preamble))
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                frames = reader.feed(chunk)
                if frames:
                    return frames[0]
        except TimeoutError:
            return None


def test_meter_bank_answers_each_meter_with_its_simulated_volume_balance_and_valve(
        field: SimulatedField, bank: MeterBankServer) -> None:
    for index, household in enumerate(field.county.households):
        reply = exchange(bank.port, metering_request(household.meter, MODEL, ser=index))
        assert reply is not None and reply.address == household.meter
        data = decode_metering(reply, MODEL)
        assert data.ser == index
        state = field.meter(household.meter)
        assert float(data.volume_m3) == pytest.approx(state.volume_m3, abs=0.01)
        assert data.valve == ("open" if state.valve_open else "closed")
        assert data.meter_clock.replace(tzinfo=MODEL.clock_tz) == state.clock.replace(
            microsecond=0)
        purchase = decode_purchase(
            exchange(bank.port, purchase_request(household.meter, MODEL)), MODEL)
        assert float(purchase.balance_yuan) == pytest.approx(max(0.0, state.balance_yuan),
                                                             abs=0.01)


def test_valve_command_closes_the_simulated_household_valve_until_it_is_opened(
        field: SimulatedField, bank: MeterBankServer) -> None:
    household = field.county.households[2]
    reply = decode_reply(exchange(bank.port, valve_request(household.meter, MODEL,
                                                           open_valve=False)), MODEL)
    assert reply.status.valve == "closed"
    assert not field.meter(household.meter).valve_open
    volume = field.meter(household.meter).volume_m3
    field.advance(3)  # the prepaid logic must not reopen a remotely closed valve
    assert field.meter(household.meter).volume_m3 == volume  # no water behind a shut valve
    data = decode_metering(exchange(bank.port, metering_request(household.meter, MODEL)),
                           MODEL)
    assert data.valve == "closed"
    decode_reply(exchange(bank.port, valve_request(household.meter, MODEL, open_valve=True)),
                 MODEL)
    assert field.meter(household.meter).valve_open


def test_meter_bank_is_silent_for_an_offline_meter_and_for_addresses_not_on_its_line() -> None:
    county = build_county(12, 1, 3)
    offline = county.households[0]
    outage = Incident(kind="meter_offline", target=offline.id, start=START,
                      end=START + timedelta(hours=1))
    field = SimulatedField(CountySimulation(county, [outage], START, 12))
    with MeterBankServer(field, [h.meter for h in field.county.households], MODEL) as server:
        assert exchange(server.port, metering_request(offline.meter, MODEL), wait_s=0.5) is None
        assert exchange(server.port, metering_request("12345678901234", MODEL),
                        wait_s=0.5) is None
        other = field.county.households[1]
        assert exchange(server.port, metering_request(other.meter, MODEL)) is not None
        field.advance(12)  # past the end of the outage
        assert exchange(server.port, metering_request(offline.meter, MODEL)) is not None
    assert server.stats.silent == 1


def test_modbus_server_serves_the_profile_registers_of_the_simulated_pump_and_analyser(
        field: SimulatedField) -> None:
    pump_profile = get_profile("generic-vfd-pump")
    analyser_profile = get_profile("generic-quality-analyser")
    well = field.county.wells[0].id
    tap = next(a for a in field.county.analysers if a.site == "tap")
    devices = [
        SimulatedModbusDevice(1, pump_profile, lambda: field.pump(well)),
        SimulatedModbusDevice(7, analyser_profile, lambda: field.analyser(tap.id)),
    ]
    port = free_port()
    with ModbusDeviceServer(devices, port=port):
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        try:
            def values(profile, unit: int):
                blocks = []
                for spec in read_plan(profile):
                    reader = (client.read_holding_registers if spec.table == "holding"
                              else client.read_input_registers)
                    response = reader(spec.start, count=spec.count, device_id=unit)
                    assert not response.isError()
                    blocks.append(RegisterBlock(table=spec.table, start=spec.start,
                                                values=tuple(response.registers)))
                return decode_blocks(profile, blocks)

            pump = values(pump_profile, 1)
            analyser = values(analyser_profile, 7)
        finally:
            client.close()
    expected = field.pump(well)
    assert pump["running"] == expected["running"]
    assert pump["well_level_m"] == pytest.approx(expected["well_level_m"], abs=0.01)
    assert pump["run_hours"] == round(expected["run_hours"])
    assert pump["fault_code"] == 0
    expected_q = field.analyser(tap.id)
    assert analyser["free_chlorine_mgl"] == pytest.approx(expected_q["free_chlorine_mgl"],
                                                          rel=1e-6)
    # The tap analyser has no pH probe: its register shows NaN, "not measured".
    assert math.isnan(analyser["ph"])


def test_device_simulator_cli_serves_a_village_that_its_gateway_config_lets_pollers_read(
        tmp_path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.devices", "--villages", "1",
         "--households-per-village", "3", "--noise", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.strip() == "ready":
                break
        config = yaml.safe_load((tmp_path / "gw-v001.yaml").read_text())
        sink_readings: list = []

        class Sink:
            def put_readings(self, readings) -> None:
                sink_readings.extend(readings)

            def put_events(self, events) -> None:
                raise AssertionError(f"no events expected: {events}")

        group = build_pollers(village=config["village"], dma=config["dma"],
                              devices=config["devices"], links=config["links"])
        group.attach(Sink())
        try:
            summary = group.poll_now(None)
        finally:
            group.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        process.stdout.close()
    assert summary == f"{len(config['devices'])} ok"
    assert {r.device for r in sink_readings} == {d["device"] for d in config["devices"]}
