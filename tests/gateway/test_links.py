"""Byte links and CJ/T 188 transactions over real sockets and a real pseudo-terminal."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import serial

from common.localservices import free_port
from gateway.cjt188 import FrameReader, decode_metering, get_model, metering_request
from gateway.devices import LineNoise, MeterBankServer, SimulatedField
from gateway.links import (
    LinkError,
    MeterBus,
    NoReplyError,
    SerialLink,
    SerialLinkConfig,
    TcpLink,
    TcpLinkConfig,
    make_link,
)

START = datetime(2026, 7, 1, tzinfo=UTC)
MODEL = get_model("default")


@pytest.fixture
def field() -> SimulatedField:
    return SimulatedField.build(seed=21, villages=1, households_per_village=5, start=START)


@pytest.fixture
def meters(field: SimulatedField) -> list[str]:
    return [h.meter for h in field.county.households]


@pytest.fixture
def bank(field: SimulatedField, meters: list[str]) -> Iterator[MeterBankServer]:
    with MeterBankServer(field, meters, MODEL) as server:
        yield server


def read_all(bus: MeterBus, meters: list[str]) -> dict[str, float]:
    volumes = {}
    for ser, meter in enumerate(meters):
        reply = bus.transact(metering_request(meter, MODEL, ser=ser), MODEL, timeout_s=2.0)
        volumes[meter] = float(decode_metering(reply, MODEL).volume_m3)
    return volumes


def expected_volumes(field: SimulatedField, meters: list[str]) -> dict[str, float]:
    return {m: pytest.approx(field.meter(m).volume_m3, abs=0.01) for m in meters}


def test_tcp_link_reads_every_meter_behind_a_converter(
        field: SimulatedField, meters: list[str], bank: MeterBankServer) -> None:
    link = make_link(TcpLinkConfig(host="127.0.0.1", port=bank.port))
    try:
        assert read_all(MeterBus(link), meters) == expected_volumes(field, meters)
    finally:
        link.close()


def test_serial_link_reaches_the_converter_through_a_pyserial_socket_url(
        field: SimulatedField, meters: list[str], bank: MeterBankServer) -> None:
    link = make_link(SerialLinkConfig(port=f"socket://127.0.0.1:{bank.port}"))
    assert isinstance(link, SerialLink)
    try:
        assert read_all(MeterBus(link), meters) == expected_volumes(field, meters)
    finally:
        link.close()


def test_serial_link_talks_2400_8e1_on_a_pseudo_terminal(
        field: SimulatedField, meters: list[str]) -> None:
    """A real tty set to the M-Bus line settings; the meter bank answers on the other side."""
    master, slave = os.openpty()
    bank = MeterBankServer(field, meters, MODEL)  # not started: its meters answer the pty
    stop = threading.Event()

    def meter_side() -> None:
        reader = FrameReader(keep_requests=True)
        while not stop.is_set():
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            for frame in reader.feed(chunk):
                reply = bank.answer(frame)
                if reply is not None:
                    os.write(master, reply)

    thread = threading.Thread(target=meter_side, daemon=True)
    thread.start()
    link = SerialLink(os.ttyname(slave))
    try:
        assert read_all(MeterBus(link), meters) == expected_volumes(field, meters)
        port = link._opened()  # noqa: SLF001 - check the line settings reached the tty
        assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (
            2400, 8, serial.PARITY_EVEN, 1)
    finally:
        link.close()
        stop.set()
        os.close(slave)
        os.close(master)
        bank.stop()
        thread.join(timeout=5)


def test_meter_bus_finds_each_reply_among_echoes_garbage_and_broken_frames(
        field: SimulatedField, meters: list[str]) -> None:
    noise = LineNoise(echo=True, garbage_probability=0.8, broken_frame_probability=0.5,
                      max_segment_bytes=5, seed=3)
    with MeterBankServer(field, meters, MODEL, noise=noise) as server:
        link = TcpLink("127.0.0.1", server.port)
        bus = MeterBus(link)
        try:
            for _ in range(4):
                assert read_all(bus, meters) == expected_volumes(field, meters)
        finally:
            link.close()
    stats = bus.reader.stats
    assert stats.echoes == 4 * len(meters)
    assert stats.bad_frames > 0 and stats.discarded_bytes > 0
    assert bus.stats.timeouts == 0


def test_meter_bus_raises_no_reply_when_the_meter_is_not_on_the_line(
        bank: MeterBankServer) -> None:
    link = TcpLink("127.0.0.1", bank.port)
    bus = MeterBus(link)
    try:
        with pytest.raises(NoReplyError):
            bus.transact(metering_request("11111111111111", MODEL), MODEL, timeout_s=0.3)
    finally:
        link.close()
    assert bus.stats.timeouts == 1


def test_tcp_link_reconnects_after_the_converter_restarts(
        field: SimulatedField, meters: list[str]) -> None:
    port = free_port()
    link = TcpLink("127.0.0.1", port)
    bus = MeterBus(link)
    try:
        with MeterBankServer(field, meters, MODEL, port=port):
            read_all(bus, meters[:1])
        with pytest.raises(LinkError):  # the converter is gone: the link says so
            read_all(bus, meters[:1])
        with MeterBankServer(field, meters, MODEL, port=port):
            assert read_all(bus, meters[:1]) == expected_volumes(field, meters[:1])
    finally:
        link.close()


def test_link_error_when_nothing_listens_or_the_port_does_not_exist() -> None:
    with pytest.raises(LinkError):
        TcpLink("127.0.0.1", free_port(), connect_timeout_s=1).write(b"\x68")
    with pytest.raises(LinkError):
        SerialLink("/dev/does-not-exist-ruralwater").write(b"\x68")
