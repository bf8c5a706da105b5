"""The gateway uplink against a real Mosquitto, the real collector and a real InfluxDB.

A recording subscriber (persistent session) sees what the broker delivers: the telemetry
sequence numbers in arrival order and the gateway's status. "In order" means that every
sequence number arrives for the first time after every smaller one (a redelivery after a
reconnect or a kill may repeat numbers; InfluxDB overwrites those points).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.service import Collector
from collector.service import build_mqtt_client as build_collector_client
from common.contract import (
    Channel,
    CommandMessage,
    CommandResult,
    MeterReading,
    StatusMessage,
    topic,
)
from common.influx import InfluxClient
from common.localservices import Mosquitto, free_port
from common.settings import CollectorSettings, GatewaySettings, InfluxSettings, MqttSettings
from gateway.config import GatewayConfig
from gateway.outbox import Outbox
from gateway.service import GatewayService, open_outbox
from gateway.uplink import TokenBucket, Uplink, build_mqtt_client
from tests.collector.helpers import in_background, wait_for
from tests.deploy.test_mosquitto_acl import PASSWORDS, add_gateway, init_passwords, start_broker

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- test-side tools


class Recorder:
    """A bureau-side MQTT client recording one gateway's telemetry seqs, status and results."""

    def __init__(self, port: int, gateway: str, client_id: str = "recorder",
                 login: tuple[str, str] | None = None,
                 channels: tuple[Channel, ...] = (Channel.TELEMETRY, Channel.STATUS,
                                                  Channel.RESULTS)) -> None:
        self.gateway = gateway
        self.channels = channels
        self.seqs: list[int] = []
        self.states: list[StatusMessage] = []
        self.results: list[CommandResult] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        if login:
            self.client.username_pw_set(*login)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "the recorder to connect")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(topic(self.gateway, channel), 1) for channel in self.channels])

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        channel = Channel(message.topic.rsplit("/", 1)[1])
        with self._lock:
            if channel is Channel.TELEMETRY:
                self.seqs.append(json.loads(message.payload)["seq"])
            elif channel is Channel.STATUS:
                self.states.append(StatusMessage.model_validate_json(message.payload))
            else:
                self.results.append(CommandResult.model_validate_json(message.payload))

    def distinct(self) -> int:
        with self._lock:
            return len(set(self.seqs))

    def state(self) -> str | None:
        with self._lock:
            return self.states[-1].state if self.states else None

    def assert_in_order(self, expected: int) -> None:
        with self._lock:
            first_seen = list(dict.fromkeys(self.seqs))
        assert first_seen == list(range(expected))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def meter_readings(count: int, start: int = 0) -> list[MeterReading]:
    """Unique (device, time) pairs, so InfluxDB counts are exact."""
    origin = datetime.now(UTC) - timedelta(hours=2)
    return [MeterReading(device=f"m-{i % 10:04d}", time=origin + timedelta(seconds=i),
                         village="v01", dma="dma-v01", volume_m3=i * 0.01, valve="open")
            for i in range(start, start + count)]


def gateway_settings(tmp_path: Path, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(data_dir=tmp_path / "gateway", **overrides)


class ValveBank:
    """A small real DeviceController: meters with valves, and a record of polls."""

    def __init__(self, meters: list[str]) -> None:
        self.valves = dict.fromkeys(meters, "open")
        self.polls: list[str | None] = []

    def poll_now(self, device: str | None) -> str:
        if device is not None and device not in self.valves:
            raise KeyError(f"no device {device}")
        self.polls.append(device)
        return f"polled {device or 'all'}"

    def set_valve(self, device: str, open_valve: bool) -> str:
        if device not in self.valves:
            raise KeyError(f"no meter {device}")
        self.valves[device] = "open" if open_valve else "closed"
        return f"valve {self.valves[device]}"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def collector(mqtt_settings: MqttSettings, influx_settings: InfluxSettings,
              influx: InfluxClient, tmp_path: Path) -> Iterator[Collector]:
    settings = CollectorSettings(client_id="collector-gw-test", data_dir=tmp_path / "collector",
                                 health_port=0, batch_max_delay_s=0.2, retry_initial_s=0.2,
                                 retry_max_s=2.0)
    client = InfluxClient(influx_settings)
    service = Collector(mqtt_client=build_collector_client(mqtt_settings, settings),
                        mqtt_settings=mqtt_settings, influx=client, settings=settings)
    service.start()
    assert service.wait_connected(15), "collector did not connect"
    yield service
    service.stop()
    client.close()


def make_service(gateway: str, tmp_path: Path, mqtt_settings: MqttSettings,
                 controller: ValveBank | None = None, **overrides: Any) -> GatewayService:
    config = GatewayConfig(gateway=gateway, village="v01", dma="dma-v01",
                           devices=[{"device": "m-0001", "kind": "meter", "model": "default"}])
    return GatewayService(config=config, settings=gateway_settings(tmp_path, **overrides),
                          mqtt_settings=mqtt_settings,
                          mqtt_client=build_mqtt_client(mqtt_settings, gateway),
                          controller=controller)


# --------------------------------------------------------------------------- tests


def test_every_reading_reaches_influxdb_in_sequence_order_across_a_broker_outage(
    tmp_path: Path, mosquitto: Mosquitto, mqtt_settings: MqttSettings, collector: Collector,
    influx: InfluxClient,
) -> None:
    puts, per_put = 80, 30
    recorder = Recorder(mosquitto.port, "gw-out")
    service = make_service("gw-out", tmp_path, mqtt_settings, max_inflight=10,
                           replay_rate_msgs_s=0)
    service.start()
    try:
        assert service.uplink.wait_connected(10)

        def outage() -> None:
            mosquitto.stop()
            time.sleep(4)
            mosquitto.start()

        for number in range(puts):
            if number == 20:
                in_background(outage)
            service.outbox.put_readings(meter_readings(per_put, start=number * per_put))
            time.sleep(0.04)
        total = puts * per_put
        wait_for(lambda: influx.count("meter", "volume_m3") >= total, 90, f"{total} points")
        wait_for(lambda: service.outbox.waiting == 0, 30, "an empty outbox")
        wait_for(lambda: recorder.distinct() >= puts, 30, "every message at the recorder")
        assert influx.count("meter", "volume_m3") == total
        recorder.assert_in_order(puts)
        assert service.snapshot()["connects"] >= 2, "the outage did not disconnect the gateway"
        assert service.snapshot()["inflight_max"] <= 10
    finally:
        service.stop()
        recorder.close()


def start_gateway_process(config: Path, data_dir: Path, port: int, log: Path,
                          **extra_env: str) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "RURALWATER_MQTT__PORT": str(port),
        "RURALWATER_GATEWAY__DATA_DIR": str(data_dir),
        # Slow enough that the kill lands mid-replay.
        "RURALWATER_GATEWAY__REPLAY_RATE_MSGS_S": "40",
        "RURALWATER_GATEWAY__REPLAY_BURST": "5",
        "RURALWATER_GATEWAY__MAX_INFLIGHT": "10",
    } | extra_env
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config),
                                 "--stats-interval", "1"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def test_gateway_killed_mid_replay_loses_nothing_and_its_last_will_says_offline(
    tmp_path: Path, mosquitto: Mosquitto, collector: Collector, influx: InfluxClient,
) -> None:
    messages, per_message = 300, 10
    settings = gateway_settings(tmp_path)
    backlog = open_outbox(settings, "gw-kill")
    for number in range(messages):
        backlog.put_readings(meter_readings(per_message, start=number * per_message))
    backlog.close()
    config = tmp_path / "gw-kill.yaml"
    # No devices: the backlog is the only traffic, so the sequence has no other numbers.
    config.write_text("gateway: gw-kill\nvillage: v01\ndma: dma-v01\ndevices: []\n")
    recorder = Recorder(mosquitto.port, "gw-kill")
    log = tmp_path / "gateway.log"
    process = start_gateway_process(config, settings.data_dir, mosquitto.port, log)
    try:
        wait_for(lambda: recorder.distinct() >= 30, 30, "the replay to start")
        process.send_signal(signal.SIGKILL)
        process.wait()
        wait_for(lambda: recorder.state() == "offline", 10, "the Last Will")
        left = open_outbox(settings, "gw-kill")
        assert 0 < left.waiting < messages, "the kill did not land mid-replay"
        left.close()

        process = start_gateway_process(config, settings.data_dir, mosquitto.port, log)
        total = messages * per_message
        wait_for(lambda: influx.count("meter", "volume_m3") >= total, 90, f"{total} points")
        wait_for(lambda: recorder.distinct() >= messages, 30, "every message at the recorder")
        assert influx.count("meter", "volume_m3") == total
        recorder.assert_in_order(messages)
        assert recorder.state() == "online"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        wait_for(lambda: recorder.state() == "offline", 10, "offline after a clean stop")
        drained = open_outbox(settings, "gw-kill")
        assert drained.waiting == 0 and drained.next_seq == messages
        drained.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        recorder.close()


def test_a_command_round_trips_to_the_device_controller_and_its_result_is_published(
    tmp_path: Path, mosquitto: Mosquitto, mqtt_settings: MqttSettings,
) -> None:
    controller = ValveBank(["m-0001", "m-0002"])
    service = make_service("gw-cmd", tmp_path, mqtt_settings, controller=controller)
    service.start()
    recorder = Recorder(mosquitto.port, "gw-cmd")
    try:
        assert service.uplink.wait_connected(10)
        wait_for(lambda: recorder.state() == "online", 10, "the retained birth message")
        assert recorder.states[-1].inventory[0].device == "m-0001"
        now = datetime.now(UTC)
        commands = [
            CommandMessage(command_id="c1", gateway="gw-cmd", action="valve_close",
                           device="m-0002", issued_at=now),
            CommandMessage(command_id="c2", gateway="gw-cmd", action="poll_now", issued_at=now),
            CommandMessage(command_id="c3", gateway="gw-cmd", action="valve_open",
                           device="m-9999", issued_at=now),
            CommandMessage(command_id="c1", gateway="gw-cmd", action="valve_close",
                           device="m-0002", issued_at=now),  # a redelivery: answered, not re-run
            CommandMessage(command_id="c4", gateway="gw-cmd", action="valve_open",
                           device="m-0002", issued_at=now - timedelta(hours=2)),  # stale
        ]
        for command in commands:
            recorder.client.publish(topic("gw-cmd", Channel.COMMANDS),
                                    command.model_dump_json(), qos=1)
        wait_for(lambda: len(recorder.results) >= 5, 15, "five command results")
        results = recorder.results
        assert [(r.command_id, r.ok) for r in results] == [
            ("c1", True), ("c2", True), ("c3", False), ("c1", True), ("c4", False)]
        assert results[4].detail.startswith("expired")
        assert results[0].detail == "valve closed" and results[1].detail == "polled all"
        assert "m-9999" in results[2].detail
        assert results[3] == results[0]
        assert controller.valves == {"m-0001": "open", "m-0002": "closed"}
        assert controller.polls == [None]
    finally:
        service.stop()
        recorder.close()


# --------------------------------------------------------------------------- in-flight bound


class PubackHoldingProxy:
    """A TCP relay between the gateway and the broker that reads the MQTT packets going by.

    It counts, per connection, outbox publishes (telemetry and events, QoS 1) the gateway has
    sent and the broker's PUBACK has not yet reached the gateway; while ``hold`` is set it
    withholds PUBACKs, so a gateway that ignores its window would overrun it visibly.
    """

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.port = free_port()
        self.hold = threading.Event()
        self.released = threading.Event()
        self.max_outstanding = 0
        self.outstanding: set[int] = set()
        self.connections = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        in_background(self._accept)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            broker = socket.create_connection(("127.0.0.1", self.broker_port))
            with self._lock:
                self.outstanding = set()
                self.connections += 1
                self._sockets += [client, broker]
            in_background(lambda c=client, b=broker: self._pump(c, b, upstream=True))
            in_background(lambda c=client, b=broker: self._pump(b, c, upstream=False))

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            for packet in read_packets(source):
                kind = packet[0] >> 4
                if upstream and kind == 3 and (packet[0] >> 1) & 3 == 1:
                    self._published(packet)
                elif not upstream and kind == 4:
                    if self.hold.is_set():
                        self.released.wait()
                    with self._lock:
                        self.outstanding.discard(int.from_bytes(packet_body(packet)[:2], "big"))
                sink.sendall(packet)
        except OSError:
            pass
        finally:
            source.close()
            sink.close()

    def _published(self, packet: bytes) -> None:
        body = packet_body(packet)
        length = int.from_bytes(body[:2], "big")
        name = body[2:2 + length].decode()
        if name.endswith(("/telemetry", "/events")):
            with self._lock:
                self.outstanding.add(int.from_bytes(body[2 + length:4 + length], "big"))
                self.max_outstanding = max(self.max_outstanding, len(self.outstanding))

    def count(self) -> int:
        with self._lock:
            return len(self.outstanding)

    def drop_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            # shutdown, not just close: it wakes the pump blocked in recv() on this socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.released.set()
        self._server.close()
        self.drop_connections()


def read_packets(sock: socket.socket) -> Iterator[bytes]:
    """Whole MQTT packets (fixed header, remaining length, body) from a stream."""
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while (size := packet_size(buffer)) is not None and len(buffer) >= size:
            yield buffer[:size]
            buffer = buffer[size:]


def packet_size(buffer: bytes) -> int | None:
    length, shift = 0, 0
    for index in range(1, min(len(buffer), 5)):
        length |= (buffer[index] & 0x7F) << shift
        shift += 7
        if not buffer[index] & 0x80:
            return index + 1 + length
    return None


def packet_body(packet: bytes) -> bytes:
    index = 1
    while packet[index] & 0x80:
        index += 1
    return packet[index + 1:]


def test_in_flight_bound_holds_while_acknowledgements_are_withheld_and_after_a_reconnect(
    tmp_path: Path, mosquitto: Mosquitto, mqtt_settings: MqttSettings,
) -> None:
    window = 8
    proxy = PubackHoldingProxy(mosquitto.port)
    via_proxy = mqtt_settings.model_copy(update={"port": proxy.port})
    service = make_service("gw-window", tmp_path, via_proxy, max_inflight=window,
                           replay_rate_msgs_s=0)
    recorder = Recorder(mosquitto.port, "gw-window")
    service.start()
    try:
        assert service.uplink.wait_connected(10)
        proxy.hold.set()
        for number in range(50):
            service.outbox.put_readings(meter_readings(5, start=number * 5))
        wait_for(lambda: proxy.count() >= window, 15, "the window to fill")
        time.sleep(0.5)  # room for a gateway that ignores its window to overrun it
        # paho forgets its own in-flight count on a reconnect and resends everything it holds.
        proxy.drop_connections()
        wait_for(lambda: proxy.connections == 2 and proxy.count() >= window, 30,
                 "the resent window on the new connection")
        time.sleep(0.5)
        proxy.hold.clear()
        proxy.released.set()
        wait_for(lambda: service.outbox.waiting == 0, 30, "an empty outbox")
        wait_for(lambda: recorder.distinct() >= 50, 15, "every message at the recorder")
        recorder.assert_in_order(50)
        assert proxy.max_outstanding == window
        assert service.snapshot()["inflight_max"] == window
    finally:
        service.stop()
        proxy.close()
        recorder.close()


# --------------------------------------------------------------------------- security


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """The shipped password file set-up and ACL (deploy/mosquitto), with gw-a and gw-b."""
    passwd = tmp_path / "passwd"
    init_passwords(passwd, PASSWORDS["svc.collector"], PASSWORDS["svc.bureau"])
    for gateway in ("gw-a", "gw-b"):
        add_gateway(passwd, gateway, PASSWORDS[gateway])
    broker = start_broker(tmp_path / "secured", passwd)
    yield broker
    broker.stop()


def test_gateway_logs_in_as_itself_and_the_shipped_acl_carries_its_status_data_and_commands(
    tmp_path: Path, secured_broker: Mosquitto,
) -> None:
    port = secured_broker.port
    login = MqttSettings(port=port, password=PASSWORDS["gw-a"])
    bureau = Recorder(port, "gw-a", "bureau", ("svc.bureau", PASSWORDS["svc.bureau"]),
                      (Channel.STATUS, Channel.RESULTS))
    collector_side = Recorder(port, "gw-a", "collector",
                              ("svc.collector", PASSWORDS["svc.collector"]), (Channel.TELEMETRY,))
    controller = ValveBank(["m-0001"])
    service = make_service("gw-a", tmp_path, login, controller=controller)
    service.start()
    try:
        assert service.uplink.wait_connected(10)
        service.outbox.put_readings(meter_readings(90))
        wait_for(lambda: collector_side.distinct() == 2, 15, "telemetry at the collector")
        wait_for(lambda: bureau.state() == "online", 10, "the birth message at the bureau")
        command = CommandMessage(command_id="k1", gateway="gw-a", action="valve_close",
                                 device="m-0001", issued_at=datetime.now(UTC))
        bureau.client.publish(topic("gw-a", Channel.COMMANDS), command.model_dump_json(), qos=1)
        wait_for(lambda: len(bureau.results) == 1, 15, "the command result at the bureau")
        assert bureau.results[0].ok and controller.valves["m-0001"] == "closed"
        wait_for(lambda: service.outbox.waiting == 0, 10, "an empty outbox")
        assert service.snapshot().get("refused", 0) == 0
    finally:
        service.stop()
        bureau.close()
        collector_side.close()


def test_a_wrong_password_is_refused_and_a_gateway_id_other_than_the_username_is_not_built(
    tmp_path: Path, secured_broker: Mosquitto,
) -> None:
    with pytest.raises(ValueError, match="must be the gateway id"):
        build_mqtt_client(MqttSettings(username="gw-b"), "gw-a")
    wrong = MqttSettings(port=secured_broker.port, password="not-the-password")
    service = make_service("gw-a", tmp_path, wrong)
    service.start()
    try:
        wait_for(lambda: service.snapshot().get("connect_refused", 0) >= 1, 15,
                 "the broker to refuse the login")
        assert not service.snapshot()["mqtt_connected"]
    finally:
        service.stop()


def test_publishes_the_broker_refuses_stay_in_the_outbox(
    tmp_path: Path, secured_broker: Mosquitto,
) -> None:
    """gw-b's login publishing gw-a's outbox: the ACL refuses each PUBACK, nothing is deleted."""
    as_b = MqttSettings(port=secured_broker.port, password=PASSWORDS["gw-b"])
    outbox = Outbox(tmp_path / "outbox.sqlite3", "gw-a", max_bytes=10_000_000)
    uplink = Uplink(client=build_mqtt_client(as_b, "gw-b"), outbox=outbox,
                    controller=ValveBank([]), inventory=[], mqtt_settings=as_b,
                    settings=gateway_settings(tmp_path, retry_after_refusal_s=0.5))
    uplink.start()
    try:
        assert uplink.wait_connected(10)
        outbox.put_readings(meter_readings(120))
        wait_for(lambda: uplink.snapshot().get("refused", 0) >= 2, 15, "refused PUBACKs")
        wait_for(lambda: uplink.snapshot().get("published", 0) >= 4, 15, "a retry")
        assert outbox.waiting == 2 and uplink.snapshot().get("acked", 0) == 0
    finally:
        uplink.stop()
        outbox.close()


def test_replay_rate_is_bounded_by_the_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10.0, burst=5, clock=lambda: now[0])
    assert bucket.take(100) == 5          # the burst
    assert bucket.take(100) == 0
    now[0] += 1.0
    assert bucket.take(100) == 5          # refilled to the burst, not to 10
    now[0] += 0.3
    assert bucket.take(100) == 3
    bucket.give_back(2)
    assert bucket.take(100) == 2
    assert TokenBucket(rate=0, burst=1).take(1000) == 1000  # 0: unlimited


# --------------------------------------------------------------------------- the whole gateway


def test_python_m_gateway_polls_simulated_devices_into_influxdb_and_carries_out_commands(
    tmp_path: Path, mosquitto: Mosquitto, collector: Collector, influx: InfluxClient,
) -> None:
    """``python -m gateway.devices`` (meters behind a TCP converter, a Modbus drive and
    analysers) and ``python -m gateway`` on the config file it writes, as separate processes."""
    devices = subprocess.Popen(
        [sys.executable, "-m", "gateway.devices", "--villages", "1",
         "--households-per-village", "3", "--out", str(tmp_path / "devices")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    recorder = Recorder(mosquitto.port, "gw-v001")
    gateway: subprocess.Popen[bytes] | None = None
    try:
        assert devices.stdout is not None
        for line in devices.stdout:
            if line.strip() == "ready":
                break
        gateway = start_gateway_process(tmp_path / "devices" / "gw-v001.yaml",
                                        tmp_path / "gateway", mosquitto.port,
                                        tmp_path / "gateway.log")
        wait_for(lambda: recorder.state() == "online", 30, "the gateway's birth message")
        assert len(recorder.states[-1].inventory) == 6
        now = datetime.now(UTC)
        for command in (
            CommandMessage(command_id="poll-1", gateway="gw-v001", action="poll_now",
                           issued_at=now),
            CommandMessage(command_id="close-1", gateway="gw-v001", action="valve_close",
                           device="78330000000002", issued_at=now),
        ):
            recorder.client.publish(topic("gw-v001", Channel.COMMANDS),
                                    command.model_dump_json(), qos=1)
        wait_for(lambda: len(recorder.results) == 2, 60, "two command results")
        assert all(result.ok for result in recorder.results), recorder.results
        wait_for(lambda: influx.count("meter", "volume_m3") >= 3
                 and influx.count("pump", "frequency_hz") >= 1, 60,
                 "meter and pump readings in InfluxDB")
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=60) == 0
    finally:
        for process in (gateway, devices):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        recorder.close()


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA and a broker certificate for 127.0.0.1, made with the openssl CLI."""
    folder.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=ruralwater test CA"],
        ["req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "broker.pem", "-days", "2", "-extfile", "san.ext"],
    ):
        subprocess.run(["openssl", *command], cwd=folder, check=True, capture_output=True,
                       timeout=60)
    return {name: folder / name for name in ("ca.pem", "broker.pem", "broker.key")}


def test_tls_by_configuration_carries_the_outbox_to_a_tls_only_broker(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    broker = Mosquitto(tmp_path / "tls-broker", extra_config=(
        f"cafile {certs['ca.pem']}\ncertfile {certs['broker.pem']}\n"
        f"keyfile {certs['broker.key']}\n"))
    broker.start()
    try:
        secure = make_service("gw-tls", tmp_path, MqttSettings(
            port=broker.port, tls=True, ca_file=certs["ca.pem"]))
        secure.start()
        try:
            secure.outbox.put_readings(meter_readings(60))
            wait_for(lambda: secure.outbox.waiting == 0, 20, "the outbox acknowledged over TLS")
            assert secure.snapshot()["acked"] == 1
        finally:
            secure.stop()
    finally:
        broker.stop()


def test_python_m_gateway_refuses_a_bad_config_file_with_exit_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: gw-bad\nvillage: v01\ndevices:\n"
                   "  - {device: m-1, kind: meter, link: bus1, address: '78330000000001'}\n"
                   "  - {device: m-1, kind: meter, link: bus1, address: '78330000000002'}\n"
                   "links:\n  - {name: bus1, type: tcp, host: 127.0.0.1, port: 1}\n")
    missing_link = tmp_path / "missing-link.yaml"
    missing_link.write_text("gateway: gw-bad\nvillage: v01\ndevices:\n"
                            "  - {device: m-1, kind: meter, link: nowhere, "
                            "address: '78330000000001'}\n")
    for config, reason in ((bad, "listed twice"), (missing_link, "nowhere"),
                           (tmp_path / "absent.yaml", "cannot read")):
        done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(config)],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and reason in done.stderr, done.stderr


class ReadingRecorder(Recorder):
    """Also keeps, per telemetry seq, the (device, time) of every reading, in arrival order."""

    def __init__(self, port: int, gateway: str, client_id: str) -> None:
        self.readings: dict[int, list[tuple[str, str]]] = {}
        self.arrivals: list[int] = []
        super().__init__(port, gateway, client_id=client_id)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/telemetry"):
            payload = json.loads(message.payload)
            with self._lock:
                self.arrivals.append(payload["seq"])
                self.readings.setdefault(
                    payload["seq"], [(r["device"], r["time"]) for r in payload["readings"]])
        super()._on_message(client, userdata, message)


def test_field_path_survives_ten_simulated_minutes_without_broker_and_a_kill_mid_replay(
    tmp_path: Path, mosquitto: Mosquitto, collector: Collector, influx: InfluxClient,
) -> None:
    """Simulated meters and drives (time x60) polled by ``python -m gateway``: the broker is
    away for ten simulated minutes, the gateway is SIGKILLed while replaying its outbox and
    restarted. Every reading the gateway read reaches InfluxDB once, in order per device."""
    devices = subprocess.Popen(
        [sys.executable, "-m", "gateway.devices", "--villages", "1", "--speed", "60",
         "--households-per-village", "4", "--out", str(tmp_path / "devices")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    recorder = ReadingRecorder(mosquitto.port, "gw-v001", client_id="recorder-field")
    config = tmp_path / "devices" / "gw-v001.yaml"
    data_dir, log = tmp_path / "gateway", tmp_path / "gateway.log"
    slow_replay = {"RURALWATER_GATEWAY__REPLAY_RATE_MSGS_S": "1",
                   "RURALWATER_GATEWAY__REPLAY_BURST": "1"}
    gateway: subprocess.Popen[bytes] | None = None
    try:
        assert devices.stdout is not None
        for line in devices.stdout:
            if line.strip() == "ready":
                break
        config.write_text(config.read_text() + "polling: {meter_interval_s: 2, "
                          "pump_interval_s: 1, quality_interval_s: 2}\n")
        gateway = start_gateway_process(config, data_dir, mosquitto.port, log, **slow_replay)
        wait_for(lambda: recorder.distinct() >= 3, 30, "live telemetry")
        mosquitto.stop()
        time.sleep(10)  # ten simulated minutes; the gateway keeps polling into its outbox
        mosquitto.start()
        before = recorder.distinct()
        wait_for(lambda: recorder.distinct() >= before + 3, 60, "the replay to start")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait()
        left = open_outbox(gateway_settings(tmp_path), "gw-v001")
        assert left.waiting > 3, "the kill did not land mid-replay"
        left.close()

        gateway = start_gateway_process(config, data_dir, mosquitto.port, log)
        time.sleep(3)
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=60) == 0
        outbox = open_outbox(gateway_settings(tmp_path), "gw-v001")
        unsent = {row.seq for row in outbox.after(-1, 100_000)}
        sent = set(range(outbox.next_seq)) - unsent
        outbox.close()
        wait_for(lambda: sent <= set(recorder.readings), 30, "every sent message recorded")
        with recorder._lock:
            delivered = {seq: recorder.readings[seq] for seq in sent
                         if seq in recorder.readings}
            order = list(dict.fromkeys(recorder.arrivals))
        telemetry_seqs = sorted(delivered)
        expected = sum(len(readings) for readings in delivered.values())
        counted = lambda: sum(influx.count(kind, field) for kind, field in (  # noqa: E731
            ("meter", "volume_m3"), ("pump", "frequency_hz"), ("quality", "turbidity_ntu")))
        wait_for(lambda: counted() >= expected, 60, f"{expected} readings in InfluxDB")
        assert counted() == expected
        # Replayed in order: each device's readings arrived oldest first.
        last_time: dict[str, str] = {}
        for seq in (s for s in order if s in delivered):
            for device, taken in delivered[seq]:
                assert taken >= last_time.get(device, ""), (device, taken)
                last_time[device] = taken
        assert len(telemetry_seqs) > 20
    finally:
        for process in (gateway, devices):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        recorder.close()
