"""The shipped broker security (deploy/mosquitto) enforced by a real Mosquitto 2.

The broker runs the shipped conf.d snippets and the shipped ACL file; only the listener,
persistence folder and the two file paths in 20-auth.conf are the test's own. The password
file is written by the shipped init-passwords.sh and add-gateway.sh, as in production.

"Never arrives" is proven without timing: a client's packets are handled in order, so a
forbidden message published before a permitted one would be delivered before it.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from common.contract import Channel, subscription, topic
from common.localservices import Mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
# Debian's tool locations; the scripts call mosquitto_passwd, tr, head.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
PASSWORDS = {
    "svc.collector": "collector-pw",
    "svc.bureau": "bureau-pw",
    "gw-a": "gateway-a-pw",
    "gw-b": "gateway-b-pw",
}
WAIT_S = 10.0  # how long to wait for an expected packet before calling the test failed
NOT_AUTHORIZED = 135


def run_script(script: str, *args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [str(DEPLOY / script), *args], env={"PATH": SYSTEM_PATH, **env},
        check=True, capture_output=True, timeout=60,
    )


def init_passwords(passwd_dir: Path, collector_pw: str, bureau_pw: str) -> None:
    run_script(
        "init-passwords.sh",
        env={
            "MOSQUITTO_PASSWD_DIR": str(passwd_dir),
            "MQTT_COLLECTOR_PASSWORD": collector_pw,
            "MQTT_BUREAU_PASSWORD": bureau_pw,
        },
    )


def add_gateway(passwd_dir: Path, gateway: str, password: str) -> None:
    run_script(
        "add-gateway.sh", gateway, "--password-file", str(passwd_dir / "passwd"),
        env={"GATEWAY_PASSWORD": password},
    )


def shipped_config(passwd_dir: Path) -> str:
    """conf.d as shipped, with 20-auth.conf's two container paths pointed at test files."""
    auth = (DEPLOY / "conf.d" / "20-auth.conf").read_text()
    remapped = {
        "password_file": str(passwd_dir / "passwd"),
        "acl_file": str(DEPLOY / "acl"),
    }
    lines = []
    for line in auth.splitlines():
        key = line.split(" ", 1)[0]
        lines.append(f"{key} {remapped.pop(key)}" if key in remapped else line)
    assert not remapped, f"20-auth.conf lacks {sorted(remapped)}"
    return (DEPLOY / "conf.d" / "10-sessions.conf").read_text() + "\n" + "\n".join(lines)


def start_broker(root: Path, passwd_dir: Path) -> Mosquitto:
    broker = Mosquitto(root, extra_config=shipped_config(passwd_dir), allow_anonymous=False)
    broker.start()
    return broker


@pytest.fixture
def passwd_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "passwd"
    init_passwords(folder, PASSWORDS["svc.collector"], PASSWORDS["svc.bureau"])
    for gateway in ("gw-a", "gw-b"):
        add_gateway(folder, gateway, PASSWORDS[gateway])
    return folder


@pytest.fixture
def broker(tmp_path: Path, passwd_dir: Path) -> Iterator[Mosquitto]:
    server = start_broker(tmp_path / "broker", passwd_dir)
    yield server
    server.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes


class Client:
    """A paho MQTT v5 client that records CONNACK, SUBACK, PUBACK and messages."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.port = port
        self.messages: queue.Queue[Received] = queue.Queue()
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self._acks: dict[int, queue.Queue[ReasonCode]] = {}
        self._lock = threading.Lock()
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{username}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.paho.username_pw_set(username, password)
        self.paho.on_connect = self._on_connect
        self.paho.on_message = self._on_message
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_publish = self._on_publish

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
                    _p: Properties | None) -> None:
        self.connack.put(rc)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put(Received(message.topic, bytes(message.payload)))

    def _ack_queue(self, mid: int) -> queue.Queue[ReasonCode]:
        with self._lock:
            return self._acks.setdefault(mid, queue.Queue())

    def _on_subscribe(self, _c: mqtt.Client, _u: object, mid: int, codes: list[ReasonCode],
                      _p: Properties | None) -> None:
        self._ack_queue(mid).put(codes[0])

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode,
                    _p: Properties | None) -> None:
        self._ack_queue(mid).put(rc)

    def connect(self) -> ReasonCode:
        """Connect and return the CONNACK reason code (success or refusal)."""
        self.paho.connect("127.0.0.1", self.port)
        self.paho.loop_start()
        return self.connack.get(timeout=WAIT_S)

    def subscribe(self, *filters: str) -> None:
        for name in filters:
            result, mid = self.paho.subscribe(name, qos=1)
            assert result == mqtt.MQTT_ERR_SUCCESS and mid is not None, name
            assert not self._ack_queue(mid).get(timeout=WAIT_S).is_failure

    def publish(self, name: str, payload: bytes = b"{}", retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK reason code."""
        info = self.paho.publish(name, payload, qos=1, retain=retain)
        return self._ack_queue(info.mid).get(timeout=WAIT_S)

    def next_message(self) -> Received:
        return self.messages.get(timeout=WAIT_S)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


Connect = Callable[[str], Client]


@pytest.fixture
def connect(broker: Mosquitto) -> Iterator[Connect]:
    clients: list[Client] = []

    def _connect(username: str) -> Client:
        client = Client(broker.port, username, PASSWORDS[username])
        clients.append(client)
        rc = client.connect()
        assert not rc.is_failure, f"{username}: {rc}"
        return client

    yield _connect
    for client in clients:
        client.close()


def test_collector_receives_a_gateways_telemetry_events_and_status_via_shared_subscription(
    connect: Connect,
) -> None:
    collector = connect("svc.collector")
    collector.subscribe(
        subscription(Channel.TELEMETRY, "collectors"),
        subscription(Channel.EVENTS, "collectors"),
        subscription(Channel.STATUS),
    )
    gateway = connect("gw-a")
    for channel in (Channel.TELEMETRY, Channel.EVENTS, Channel.STATUS):
        assert not gateway.publish(topic("gw-a", channel), channel.value.encode()).is_failure
        assert collector.next_message() == Received(
            topic("gw-a", channel), channel.value.encode()
        )


def test_bureau_commands_a_gateway_and_reads_its_result_and_status(
    connect: Connect,
) -> None:
    gateway = connect("gw-a")
    gateway.subscribe(topic("gw-a", Channel.COMMANDS))
    assert not gateway.publish(topic("gw-a", Channel.STATUS), b"online", retain=True).is_failure
    bureau = connect("svc.bureau")
    bureau.subscribe(subscription(Channel.RESULTS), subscription(Channel.STATUS))
    assert bureau.next_message() == Received(topic("gw-a", Channel.STATUS), b"online")

    assert not bureau.publish(topic("gw-a", Channel.COMMANDS), b"poll_now").is_failure
    assert gateway.next_message() == Received(topic("gw-a", Channel.COMMANDS), b"poll_now")
    assert not gateway.publish(topic("gw-a", Channel.RESULTS), b"ok").is_failure
    assert bureau.next_message() == Received(topic("gw-a", Channel.RESULTS), b"ok")


def test_gateway_cannot_publish_under_another_gateways_prefix(
    connect: Connect,
) -> None:
    collector = connect("svc.collector")
    collector.subscribe(subscription(Channel.TELEMETRY))
    gateway = connect("gw-a")

    refused = gateway.publish(topic("gw-b", Channel.TELEMETRY), b"forged")
    assert refused.value == NOT_AUTHORIZED
    assert not gateway.publish(topic("gw-a", Channel.TELEMETRY), b"own").is_failure

    # The forged message would have come first; the first to arrive is the gateway's own.
    assert collector.next_message() == Received(topic("gw-a", Channel.TELEMETRY), b"own")
    assert collector.messages.empty()


@pytest.mark.parametrize(
    ("username", "forbidden"),
    [
        ("gw-a", topic("gw-b", Channel.STATUS)),
        ("gw-a", topic("gw-b", Channel.RESULTS)),
        ("gw-a", topic("gw-a", Channel.COMMANDS)),
        ("gw-a", "ruralwater/v1/gw-a/other"),
        ("svc.collector", topic("gw-a", Channel.TELEMETRY)),
        ("svc.bureau", topic("gw-a", Channel.TELEMETRY)),
        ("svc.bureau", topic("gw-a", Channel.RESULTS)),
    ],
)
def test_publishing_outside_a_users_grant_is_refused(
    connect: Connect, username: str, forbidden: str
) -> None:
    assert connect(username).publish(forbidden).value == NOT_AUTHORIZED


def test_gateway_cannot_read_another_gateways_commands(
    connect: Connect,
) -> None:
    gateway = connect("gw-a")
    # Mosquitto grants the subscriptions and checks the ACL on every delivery.
    gateway.subscribe(topic("gw-b", Channel.COMMANDS), subscription(Channel.COMMANDS))
    bureau = connect("svc.bureau")
    assert not bureau.publish(topic("gw-b", Channel.COMMANDS), b"for-b").is_failure
    assert not bureau.publish(topic("gw-a", Channel.COMMANDS), b"for-a").is_failure

    assert gateway.next_message() == Received(topic("gw-a", Channel.COMMANDS), b"for-a")
    assert gateway.messages.empty()


@pytest.mark.parametrize(
    ("username", "password"),
    [("gw-unknown", "gateway-a-pw"), ("gw-a", "wrong-password"), (None, None)],
    ids=["unknown-user", "wrong-password", "anonymous"],
)
def test_unknown_user_wrong_password_or_anonymous_cannot_connect(
    broker: Mosquitto, username: str | None, password: str | None
) -> None:
    client = Client(broker.port, username, password)
    try:
        assert client.connect().is_failure
    finally:
        client.close()


def test_reinit_keeps_gateway_users_and_sets_new_service_passwords(
    tmp_path: Path, passwd_dir: Path
) -> None:
    init_passwords(passwd_dir, "rotated-collector-pw", PASSWORDS["svc.bureau"])
    server = start_broker(tmp_path / "broker", passwd_dir)
    try:
        for username, password, refused in [
            ("svc.collector", "rotated-collector-pw", False),
            ("svc.collector", PASSWORDS["svc.collector"], True),
            ("gw-a", PASSWORDS["gw-a"], False),
        ]:
            client = Client(server.port, username, password)
            try:
                assert client.connect().is_failure is refused, (username, password)
            finally:
                client.close()
    finally:
        server.stop()


def test_add_gateway_rejects_ids_that_are_not_gateway_ids(passwd_dir: Path) -> None:
    for bad in ("svc.collector", "gw/b", "gw+", "GW-A", "-gw"):
        with pytest.raises(subprocess.CalledProcessError):
            add_gateway(passwd_dir, bad, "pw")
    users = [line.split(":", 1)[0] for line in (passwd_dir / "passwd").read_text().splitlines()]
    assert sorted(users) == ["gw-a", "gw-b", "svc.bureau", "svc.collector", "svc.health"]


def test_broker_healthcheck_probe_succeeds_and_fails_on_bad_credentials(
    broker: Mosquitto, passwd_dir: Path, tmp_path: Path
) -> None:
    probe_env = {"MQTT_HEALTH_PORT": str(broker.port)}
    run_script("healthcheck.sh", env={**probe_env, "MOSQUITTO_PASSWD_DIR": str(passwd_dir)})

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "healthcheck").write_text("not-the-password")
    with pytest.raises(subprocess.CalledProcessError):
        run_script("healthcheck.sh", env={**probe_env, "MOSQUITTO_PASSWD_DIR": str(wrong)})


def start_gateway_with_will(port: int, gateway: str, will_topic: str) -> subprocess.Popen[str]:
    """mosquitto_sub as ``gateway`` with a retained Last Will; returns once subscribed."""
    # stdbuf: line-buffered stdout, so the debug line saying SUBACK arrives through the pipe.
    process = subprocess.Popen(
        ["stdbuf", "-oL", "mosquitto_sub", "-V", "mqttv5", "-d", "-p", str(port), "-u", gateway,
         "-P", PASSWORDS[gateway], "-t", topic(gateway, Channel.COMMANDS),
         "--will-topic", will_topic, "--will-payload", f"offline from {gateway}",
         "--will-retain", "--will-qos", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PATH": SYSTEM_PATH},
    )
    assert process.stdout is not None
    # If it never connects, the watchdog kills it, which ends the loop below.
    watchdog = threading.Timer(WAIT_S, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            if "received SUBACK" in line:
                return process
    finally:
        watchdog.cancel()
    raise AssertionError(f"{gateway} did not connect: exit {process.wait()}")


def drop_connection(process: subprocess.Popen[str]) -> None:
    """SIGKILL: no DISCONNECT reaches the broker, so it publishes the Last Will."""
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def test_gateway_last_will_reaches_only_its_own_status_topic(
    broker: Mosquitto, connect: Connect
) -> None:
    collector = connect("svc.collector")
    collector.subscribe(subscription(Channel.STATUS))
    forger = start_gateway_with_will(broker.port, "gw-a", topic("gw-b", Channel.STATUS))
    honest = start_gateway_with_will(broker.port, "gw-a", topic("gw-a", Channel.STATUS))
    try:
        drop_connection(forger)
        # A PUBACK round trip after the forger's socket closed: had the broker accepted its
        # will, it would be queued to the collector before the honest one below.
        assert not connect("gw-b").publish(topic("gw-b", Channel.TELEMETRY)).is_failure
        drop_connection(honest)
        assert collector.next_message() == Received(
            topic("gw-a", Channel.STATUS), b"offline from gw-a"
        )
        assert collector.messages.empty()
    finally:
        for process in (forger, honest):
            if process.poll() is None:
                drop_connection(process)
