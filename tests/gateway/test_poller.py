"""The poller against protocol-speaking device simulators over real TCP sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta

import pytest

from common.contract import (
    READING,
    DeviceEvent,
    EventMessage,
    MeterReading,
    PumpReading,
    QualityReading,
    Reading,
    TelemetryMessage,
)
from common.localservices import free_port
from gateway.cjt188 import get_model
from gateway.devices import (
    LineNoise,
    MeterBankServer,
    ModbusDeviceServer,
    SimulatedField,
    SimulatedModbusDevice,
)
from gateway.links import MeterBus, TcpLink
from gateway.modbus_profiles import get_profile
from gateway.poller import (
    CommandError,
    DeviceConfig,
    LinkPoller,
    MeterDriver,
    PollDefaults,
    PollerConfigError,
    PollerGroup,
    PollResult,
    build_pollers,
)
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident

START = datetime(2026, 7, 1, tzinfo=UTC)
MODEL = get_model("default")
PUMP = get_profile("generic-vfd-pump")
ANALYSER = get_profile("generic-quality-analyser")
FAST = PollDefaults(timeout_s=0.3, retries=2)


@dataclass
class CollectingSink:
    """A ReadingSink that keeps what it is given, from any thread."""

    readings: list[Reading] = dataclass_field(default_factory=list)
    events: list[DeviceEvent] = dataclass_field(default_factory=list)
    lock: threading.Lock = dataclass_field(default_factory=threading.Lock)

    def put_readings(self, readings: Sequence[Reading]) -> None:
        with self.lock:
            self.readings.extend(readings)

    def put_events(self, events: Sequence[DeviceEvent]) -> None:
        with self.lock:
            self.events.extend(events)

    def of(self, device: str) -> list[Reading]:
        with self.lock:
            return [r for r in self.readings if r.device == device]


@dataclass
class Site:
    """One village's devices behind a meter converter and a Modbus gateway."""

    field: SimulatedField
    bank: MeterBankServer
    modbus_port: int
    meters: list[str]
    well: str
    analyser: str

    def config(self) -> tuple[list[dict], list[dict]]:
        devices: list[dict] = [{"device": m, "kind": "meter", "link": "mbus", "address": m}
                               for m in self.meters]
        devices += [
            {"device": self.well, "kind": "pump", "link": "plc", "unit": 1,
             "model": PUMP.name},
            {"device": self.analyser, "kind": "quality", "link": "plc", "unit": 2,
             "model": ANALYSER.name},
        ]
        links = [{"name": "mbus", "type": "tcp", "host": "127.0.0.1", "port": self.bank.port},
                 {"name": "plc", "type": "modbus_tcp", "host": "127.0.0.1",
                  "port": self.modbus_port}]
        return devices, links

    def pollers(self, defaults: PollDefaults = FAST) -> PollerGroup:
        devices, links = self.config()
        return build_pollers(village=self.field.county.villages[0].id, dma=None,
                             devices=devices, links=links, defaults=defaults)


def open_site(field: SimulatedField, noise: LineNoise | None = None) -> Iterator[Site]:
    county = field.county
    well, analyser = county.wells[0].id, county.analysers[0].id
    meters = [h.meter for h in county.households]
    port = free_port()
    modbus = ModbusDeviceServer(
        [SimulatedModbusDevice(1, PUMP, lambda: field.pump(well)),
         SimulatedModbusDevice(2, ANALYSER, lambda: field.analyser(analyser))], port=port)
    with MeterBankServer(field, meters, MODEL, noise=noise) as bank, modbus:
        yield Site(field, bank, port, meters, well, analyser)


def one_pump_pollers(well: str, port: int) -> PollerGroup:
    """Pollers for a single pump drive, unit 1 behind a Modbus TCP gateway on ``port``."""
    return build_pollers(
        village="v001", dma=None, defaults=FAST,
        devices=[{"device": well, "kind": "pump", "link": "plc", "unit": 1,
                  "model": PUMP.name}],
        links=[{"name": "plc", "type": "modbus_tcp", "host": "127.0.0.1", "port": port}])


@pytest.fixture
def site() -> Iterator[Site]:
    yield from open_site(SimulatedField.build(seed=31, villages=1, households_per_village=4,
                                              start=START))


def test_poller_hands_contract_valid_readings_of_meters_pump_and_analyser_to_the_sink(
        site: Site) -> None:
    sink = CollectingSink()
    group = site.pollers()
    group.attach(sink)
    try:
        summary = group.poll_now(None)
    finally:
        group.close()
    assert summary == f"{len(site.meters) + 2} ok"
    devices = {r.device for r in sink.readings}
    assert devices == {*site.meters, site.well, site.analyser}
    # What the sink got survives the wire contract both ways.
    message = TelemetryMessage(gateway="gw-v001", seq=0, sent_at=datetime.now(UTC),
                               readings=sink.readings)
    assert TelemetryMessage.model_validate_json(message.model_dump_json()) == message
    meter = sink.of(site.meters[0])[-1]
    state = site.field.meter(site.meters[0])
    assert isinstance(meter, MeterReading)
    assert meter.volume_m3 == pytest.approx(state.volume_m3, abs=0.01)
    assert meter.balance_yuan == pytest.approx(max(0.0, state.balance_yuan), abs=0.01)
    assert meter.valve == "open" and meter.village == "v001"
    pump = sink.of(site.well)[-1]
    assert isinstance(pump, PumpReading)
    assert pump.well_level_m == pytest.approx(site.field.pump(site.well)["well_level_m"],
                                              abs=0.01)
    quality = sink.of(site.analyser)[-1]
    assert isinstance(quality, QualityReading)
    expected = site.field.analyser(site.analyser)
    assert quality.free_chlorine_mgl == pytest.approx(expected["free_chlorine_mgl"], rel=1e-6)
    for reading in sink.readings:
        assert READING.validate_json(reading.model_dump_json()) == reading
    assert sink.events == []


def test_meter_that_stops_answering_is_reported_offline_after_its_retries_and_online_again(
) -> None:
    county = build_county(32, 1, 3)
    household = county.households[1]
    outage = Incident(kind="meter_offline", target=household.id,
                      start=START + timedelta(minutes=30), end=START + timedelta(minutes=90))
    field = SimulatedField(CountySimulation(county, [outage], START, 32))
    for site in open_site(field):
        sink = CollectingSink()
        group = site.pollers()
        group.attach(sink)
        meter = household.meter
        assert group.poll_now(meter) == f"{meter}: ok"
        field.advance(6)  # into the outage
        requests_before = site.bank.stats.silent
        assert group.poll_now(meter) == f"{meter}: silent"
        assert site.bank.stats.silent - requests_before == FAST.retries + 1
        assert group.poll_now(meter) == f"{meter}: silent"
        offline = [e for e in sink.events if e.code == "offline"]
        assert len(offline) == 1  # reported once, not at every silent poll
        assert (offline[0].device, offline[0].active, offline[0].device_kind) == (
            meter, True, "meter")
        assert group.poll_now(site.meters[0]) == f"{site.meters[0]}: ok"  # the others answer
        field.advance(12)  # past the outage
        assert group.poll_now(meter) == f"{meter}: ok"
        back = [e for e in sink.events if e.code == "offline"]
        assert [e.active for e in back] == [True, False]
        EventMessage(gateway="gw-v001", seq=1, sent_at=datetime.now(UTC), events=sink.events)
        group.close()


def test_valve_close_command_reaches_the_meter_and_the_next_reading_shows_it(
        site: Site) -> None:
    sink = CollectingSink()
    group = site.pollers()
    group.attach(sink)
    meter = site.meters[2]
    assert group.set_valve(meter, False) == "valve closed"
    assert not site.field.meter(meter).valve_open  # the simulated household is shut off
    group.poll_now(meter)
    assert sink.of(meter)[-1].valve == "closed"
    closed = [e for e in sink.events if e.code == "valve_closed"]
    assert [(e.device, e.active) for e in closed] == [(meter, True)]
    assert group.set_valve(meter, True) == "valve open"
    group.poll_now(meter)
    assert sink.of(meter)[-1].valve == "open"
    assert [e.active for e in sink.events if e.code == "valve_closed"] == [True, False]
    group.close()


def test_noisy_link_still_yields_every_good_reading() -> None:
    field = SimulatedField.build(seed=33, villages=1, households_per_village=8, start=START)
    noise = LineNoise(echo=True, garbage_probability=0.7, broken_frame_probability=0.4,
                      max_segment_bytes=7, seed=5)
    for site in open_site(field, noise):
        sink = CollectingSink()
        link = TcpLink("127.0.0.1", site.bank.port)
        bus = MeterBus(link)
        devices = [DeviceConfig(id=m, kind="meter", village="v001", address=m)
                   for m in site.meters]
        poller = LinkPoller("mbus", MeterDriver(bus), devices, sink,
                            defaults=PollDefaults(timeout_s=2.0, retries=0))
        try:
            for _ in range(3):
                for meter in site.meters:
                    assert poller.poll_device(meter) is PollResult.OK
                    assert sink.of(meter)[-1].volume_m3 == pytest.approx(
                        field.meter(meter).volume_m3, abs=0.01)
                field.advance(1)
        finally:
            link.close()
        assert len(sink.readings) == 3 * len(site.meters)
        assert bus.reader.stats.echoes == 2 * len(sink.readings)  # 901F and 8105 requests
        assert bus.reader.stats.bad_frames > 0 and bus.reader.stats.discarded_bytes > 0
        assert poller.stats.attempts_failed == 0


def test_scheduler_polls_pumps_and_analysers_more_often_than_meters(site: Site) -> None:
    now = [0.0]
    sink = CollectingSink()
    group = site.pollers(PollDefaults(meter_interval_s=3600, pump_interval_s=30,
                                      quality_interval_s=60, timeout_s=1.0))
    devices, _ = site.config()
    meter_poller, modbus_poller = group.pollers
    pollers = [
        LinkPoller(p.name, p.driver, [DeviceConfig.model_validate({"village": "v001", **d})
                                      for d in devices if d["link"] == p.name],
                   sink, defaults=p.defaults, monotonic=lambda: now[0])
        for p in (meter_poller, modbus_poller)
    ]
    group.attach(sink)

    def round_at(moment: float) -> set[str]:
        now[0] = moment
        return {device for poller in pollers for device, result in poller.poll_due()
                if result is PollResult.OK}

    try:
        everyone = {*site.meters, site.well, site.analyser}
        assert round_at(0) == everyone
        assert round_at(10) == set()
        assert round_at(30) == {site.well}
        assert round_at(60) == {site.well, site.analyser}
        assert round_at(3600) == everyone
        assert pollers[0].next_due_in() == 3600
    finally:
        group.close()


def test_started_pollers_poll_every_device_in_the_background_until_stopped(
        site: Site) -> None:
    sink = CollectingSink()
    group = site.pollers(PollDefaults(pump_interval_s=0.2, timeout_s=1.0))
    group.start(sink)
    try:
        deadline = time.monotonic() + 30  # liveness bound on a busy machine, not a speed claim
        while time.monotonic() < deadline and (
                len(sink.of(site.well)) < 3 or not all(sink.of(m) for m in site.meters)):
            time.sleep(0.05)
    finally:
        group.stop()
    assert len(sink.of(site.well)) >= 3  # the pump is read again and again
    assert all(len(sink.of(m)) == 1 for m in site.meters)  # meters once: hourly
    count = len(sink.readings)
    time.sleep(0.5)
    assert len(sink.readings) == count  # stopped means stopped


def test_commands_for_unknown_devices_or_a_pump_valve_are_refused(site: Site) -> None:
    group = site.pollers()
    group.attach(CollectingSink())
    with pytest.raises(CommandError, match="no device"):
        group.set_valve("nobody", False)
    with pytest.raises(CommandError, match="no valve"):
        group.set_valve(site.well, False)
    with pytest.raises(CommandError, match="no device"):
        group.poll_now("nobody")
    group.close()


def test_poller_config_refuses_devices_on_links_that_cannot_carry_them(site: Site) -> None:
    devices, links = site.config()
    wrong = [dict(d, link="mbus") if d["kind"] == "pump" else d for d in devices]
    with pytest.raises(PollerConfigError, match="cannot carry"):
        build_pollers(village="v001", dma=None, devices=wrong, links=links)
    with pytest.raises(PollerConfigError, match="not configured"):
        build_pollers(village="v001", dma=None, devices=devices, links=links[:1])
    with pytest.raises(PollerConfigError, match="not valid"):
        build_pollers(village="v001", dma=None,
                      devices=[{"device": "m1", "kind": "meter", "link": "mbus"}], links=links)
    unknown_profile = [dict(d, model="no-such-drive") if d["kind"] == "pump" else d
                       for d in devices]
    with pytest.raises(PollerConfigError, match="no-such-drive"):
        build_pollers(village="v001", dma=None, devices=unknown_profile, links=links)


def test_pump_drive_that_goes_away_is_reported_offline_and_online_when_it_is_back() -> None:
    field = SimulatedField.build(seed=34, villages=1, households_per_village=1, start=START)
    well = field.county.wells[0].id
    port = free_port()

    def drive() -> ModbusDeviceServer:
        return ModbusDeviceServer([SimulatedModbusDevice(1, PUMP, lambda: field.pump(well))],
                                  port=port)

    sink = CollectingSink()
    group = one_pump_pollers(well, port)
    group.attach(sink)
    try:
        with drive():
            assert group.poll_now(well) == f"{well}: ok"
        assert group.poll_now(well) == f"{well}: silent"
        with drive():
            assert group.poll_now(well) == f"{well}: ok"
    finally:
        group.close()
    assert [(e.code, e.active, e.device_kind) for e in sink.events] == [
        ("offline", True, "pump"), ("offline", False, "pump")]
    assert len(sink.of(well)) == 2


def test_a_meter_whose_balance_cannot_be_read_still_gives_its_reading() -> None:
    field = SimulatedField.build(seed=35, villages=1, households_per_village=2, start=START)
    meters = [h.meter for h in field.county.households]
    # This meter's purchase reply has no status bytes, which the configured model expects.
    other_firmware = MODEL.model_copy(update={"purchase_has_status": False})
    with MeterBankServer(field, meters, other_firmware) as bank:
        sink = CollectingSink()
        link = TcpLink("127.0.0.1", bank.port)
        poller = LinkPoller("mbus", MeterDriver(MeterBus(link)),
                            [DeviceConfig(id=meters[0], kind="meter", village="v001",
                                          address=meters[0])], sink, defaults=FAST)
        try:
            assert poller.poll_device(meters[0]) is PollResult.OK
        finally:
            link.close()
    reading = sink.readings[0]
    assert reading.balance_yuan is None
    assert reading.volume_m3 == pytest.approx(field.meter(meters[0]).volume_m3, abs=0.01)


def test_drive_on_an_rs485_line_is_read_with_modbus_rtu_through_a_transparent_converter(
) -> None:
    field = SimulatedField.build(seed=36, villages=1, households_per_village=1, start=START)
    well = field.county.wells[0].id
    port = free_port()
    sink = CollectingSink()
    group = build_pollers(
        village="v001", dma=None, defaults=FAST,
        devices=[{"device": well, "kind": "pump", "link": "rs485", "unit": 3,
                  "model": PUMP.name}],
        # pyserial's socket:// URL stands in for the serial port: the RTU client is unchanged
        links=[{"name": "rs485", "type": "modbus_rtu", "port": f"socket://127.0.0.1:{port}",
                "baudrate": 9600}])
    group.attach(sink)
    server = ModbusDeviceServer([SimulatedModbusDevice(3, PUMP, lambda: field.pump(well))],
                                port=port, rtu=True)
    try:
        with server:
            assert group.poll_now(well) == f"{well}: ok"
    finally:
        group.close()
    reading = sink.of(well)[0]
    assert isinstance(reading, PumpReading)
    assert reading.run_hours == round(field.pump(well)["run_hours"])


def test_a_drive_fault_in_the_simulation_reaches_the_sink_as_reading_and_event() -> None:
    county = build_county(37, 1, 1)
    well = county.wells[0].id
    fault = Incident(kind="pump_fault", target=well, start=START,
                     end=START + timedelta(minutes=30))
    field = SimulatedField(CountySimulation(county, [fault], START, 37))
    port = free_port()
    sink = CollectingSink()
    group = one_pump_pollers(well, port)
    group.attach(sink)
    try:
        with ModbusDeviceServer([SimulatedModbusDevice(1, PUMP, lambda: field.pump(well))],
                                port=port):
            group.poll_now(well)
            field.advance(7)  # the fault is over
            group.poll_now(well)
    finally:
        group.close()
    assert [r.fault_code for r in sink.of(well)] == [3, 0]
    assert [(e.code, e.active, e.severity) for e in sink.events] == [
        ("pump_fault", True, "critical"), ("pump_fault", False, "info")]


@dataclass
class CallCountingSink(CollectingSink):
    """Also keeps how many readings each call handed over."""

    calls: list[int] = dataclass_field(default_factory=list)

    def put_readings(self, readings: Sequence[Reading]) -> None:
        self.calls.append(len(readings))
        super().put_readings(readings)


def test_a_polling_round_hands_its_readings_over_together_not_one_message_per_meter(
        site: Site) -> None:
    sink = CallCountingSink()
    group = site.pollers()
    group.attach(sink)
    try:
        group.poll_now(None)  # every device, link by link
        for poller in group.pollers:
            for device_id in poller.device_ids:
                poller.make_due(device_id)
            poller.poll_due()
    finally:
        group.close()
    # Two links (meters on the converter; pump and analyser on Modbus), two rounds each.
    assert sorted(sink.calls) == sorted([len(site.meters), 2] * 2)
