"""The collector's faster paho client: same messages, same acknowledgements, fewer syscalls.

It overrides private paho methods, so the first test fails loudly when a paho release moves
them; the others run it against a real Mosquitto next to what paho itself would deliver.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.mqtt_client import READ_CHUNK, BufferedSocket, CollectorMqttClient
from common.localservices import Mosquitto

TOPIC = "ruralwater/v1/gw-1/telemetry"


def test_paho_still_has_the_private_hooks_the_client_overrides() -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         protocol=mqtt.MQTTv5)
    for name in ("_create_socket", "_packet_read", "_packet_handle", "_handle_publish",
                 "_handle_on_message", "_packet_queue", "_send_puback", "_loop_rc_handle",
                 "_easy_log"):
        assert callable(getattr(client, name, None)), name
    for name in ("_in_packet", "_sock", "_protocol", "_manual_ack", "_msgtime_mutex",
                 "_in_callback_mutex", "_userdata", "_transport", "_logger"):
        assert hasattr(client, name), name
    assert set(client._in_packet) == {"command", "have_remaining", "remaining_count",
                                      "remaining_mult", "remaining_length", "packet",
                                      "to_process", "pos"}


# --------------------------------------------------------------------------- the buffer


class _Chunks:
    """A socket stand-in that returns preset chunks, then raises BlockingIOError."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.asked: list[int] = []

    def recv(self, size: int) -> bytes:
        self.asked.append(size)
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.pop(0)


def _publish_packet(topic: bytes, payload: bytes, mid: int) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid) + b"\x00" + payload
    return bytes([0x32]) + _remaining_length(len(body)) + body


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_buffered_socket_reads_in_large_chunks_and_serves_small_reads_from_them() -> None:
    raw = _Chunks(b"abcdef")
    sock = BufferedSocket(raw)
    assert sock.recv(1) == b"a"
    assert sock.pending() == 5
    assert sock.recv(3) == b"bcd"
    assert sock.recv(10) == b"ef"
    assert raw.asked == [READ_CHUNK]
    with pytest.raises(BlockingIOError):
        sock.recv(1)


def test_buffered_socket_hands_out_whole_packets_only() -> None:
    first = _publish_packet(TOPIC.encode(), b"w", 6)
    second = _publish_packet(TOPIC.encode(), b"x" * 300, 7)  # two-byte remaining length
    third = _publish_packet(TOPIC.encode(), b"y", 8)
    sock = BufferedSocket(_Chunks(first + second + third[:5], third[5:]))
    assert sock.take_packet() is None  # nothing buffered yet: paho reads the first itself
    assert sock.recv(len(first)) == first
    assert sock.take_packet() == (0x32, second[3:])
    assert sock.take_packet() is None  # the third is cut short
    assert sock.recv(5) == third[:5]  # so paho reads it the slow way
    assert sock.recv(100) == third[5:]


def test_buffered_socket_returns_end_of_stream_as_is() -> None:
    assert BufferedSocket(_Chunks(b"")).recv(1) == b""


# --------------------------------------------------------------------------- on a broker


class _Subscriber:
    def __init__(self, client: mqtt.Client, port: int) -> None:
        self.client = client
        self.received: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        client.on_message = lambda _c, _u, message: self.received.append(message)
        client.on_subscribe = lambda *_: self.subscribed.set()
        client.on_connect = lambda c, *_: c.subscribe("ruralwater/#", qos=2)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", port, clean_start=False, properties=props)
        client.loop_start()
        assert self.subscribed.wait(10)

    def wait_for(self, count: int, timeout_s: float = 15) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _collector_client(client_id: str) -> CollectorMqttClient:
    return CollectorMqttClient(callback_api_version=CallbackAPIVersion.VERSION2,
                               client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True)


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="pub",
                         protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def test_every_kind_of_publish_arrives_as_paho_would_deliver_it(
    mosquitto: Mosquitto, publisher: mqtt.Client
) -> None:
    subscriber = _Subscriber(_collector_client("fast"), mosquitto.port)
    with_properties = Properties(PacketTypes.PUBLISH)
    with_properties.UserProperty = ("site", "well-3")
    sent = [
        publisher.publish(TOPIC, b"plain qos1", qos=1),
        publisher.publish(TOPIC, b"plain qos0", qos=0),
        publisher.publish(TOPIC, b"qos2", qos=2),
        publisher.publish(TOPIC, b"with properties", qos=1, properties=with_properties),
        publisher.publish(TOPIC, b"z" * 200_000, qos=1),  # spans several reads
    ]
    for info in sent:
        info.wait_for_publish(10)
    received = subscriber.wait_for(len(sent))
    subscriber.client.ack_many(m.mid for m in received if m.qos == 1)
    subscriber.stop()
    by_payload = {bytes(m.payload): m for m in received}
    # (QoS 2 has its own handshake, so order across QoS levels is not guaranteed)
    assert sorted(len(bytes(m.payload)) for m in received) == [4, 10, 10, 15, 200_000]
    assert all(m.topic == TOPIC for m in received)
    assert by_payload[b"plain qos1"].qos == 1 and by_payload[b"plain qos1"].mid > 0
    assert by_payload[b"plain qos0"].qos == 0
    assert by_payload[b"qos2"].qos == 2
    assert by_payload[b"with properties"].properties.UserProperty == [("site", "well-3")]


def test_many_messages_arrive_in_order_and_acknowledged_ones_are_not_redelivered(
    mosquitto: Mosquitto, publisher: mqtt.Client
) -> None:
    subscriber = _Subscriber(_collector_client("acks"), mosquitto.port)
    total = 3000
    infos = [publisher.publish(TOPIC, str(n).encode(), qos=1) for n in range(total)]
    for info in infos:
        info.wait_for_publish(30)
    received = subscriber.wait_for(total)
    assert [int(m.payload) for m in received] == list(range(total))
    acknowledged = 2000
    subscriber.client.ack_many(m.mid for m in received[:acknowledged])
    time.sleep(0.5)  # let the PUBACKs leave before the connection closes
    subscriber.stop()

    # The same session again: the broker redelivers what was never acknowledged, only that.
    again = _Subscriber(_collector_client("acks"), mosquitto.port)
    redelivered = again.wait_for(total - acknowledged)
    time.sleep(0.5)
    again.stop()
    assert [int(m.payload) for m in redelivered] == list(range(acknowledged, total))


def test_a_dropped_connection_leaves_no_stale_bytes_behind(mosquitto: Mosquitto,
                                                           publisher: mqtt.Client) -> None:
    subscriber = _Subscriber(_collector_client("drop"), mosquitto.port)
    publisher.publish(TOPIC, b"before", qos=1).wait_for_publish(10)
    before = subscriber.wait_for(1)
    subscriber.client.ack_many(m.mid for m in before)
    time.sleep(0.3)
    sock = subscriber.client.socket()
    assert isinstance(sock, BufferedSocket)
    sock.shutdown(socket.SHUT_RDWR)  # the link drops; paho reconnects on its own
    publisher.publish(TOPIC, b"after", qos=1).wait_for_publish(10)
    payloads = [bytes(m.payload) for m in subscriber.wait_for(2, timeout_s=30)]
    subscriber.stop()
    assert payloads == [b"before", b"after"]
