"""paho's client with a faster receive path, for a collector that takes one reading a message.

paho-mqtt 2.2 spends most of a small QoS 1 message's cost on the socket, not on the message:
it reads each packet with three or more ``recv`` calls, handles one packet per ``select``,
builds a fresh MQTT v5 ``Properties`` object (about 9 us) for every PUBLISH even when it has
none, and wakes its network thread once per PUBACK. At one reading a message that capped the
collector below what a Node-RED flow manages (benchmarks/README.md has the figures).

This subclass keeps paho's protocol handling, session state and reconnect logic and changes
only those four costs:

- the socket is read in 64 KiB chunks through :class:`BufferedSocket`, which reports the
  bytes it holds as ``pending()`` (the hook paho already uses for TLS), so paho's loop never
  sleeps in ``select`` while a packet waits in the buffer;
- :meth:`loop_read` handles every packet already received, not one per wake-up;
- a QoS 0/1 PUBLISH without properties (what gateways and mosquitto_pub send) is decoded
  here, sharing one empty ``Properties``; anything else goes through paho unchanged;
- :meth:`ack_many` queues the PUBACKs of a whole written batch as one write.

It overrides private methods of paho (``_create_socket``, ``_handle_publish``,
``_packet_queue`` use), so pyproject pins paho-mqtt to the 2.2 series and
tests/collector/test_mqtt_client.py checks those hooks still exist.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

READ_CHUNK = 65536
# A bound on packets handled per loop_read so writes (acknowledgements, pings) still get
# their turn; the buffer's pending() makes the next select return at once.
MAX_PACKETS_PER_READ = 2000
_PUBACK = 0x40
_PUBACK_PACKET = struct.Struct("!BBH")
# Shared by every PUBLISH that carries no properties; nothing here or in the collector
# writes to a received message's properties.
_NO_PROPERTIES = Properties(PacketTypes.PUBLISH)


class BufferedSocket:
    """A socket read in large chunks; paho's SocketLike protocol plus ``pending()``."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._position = 0

    def recv(self, bufsize: int) -> bytes:
        held = len(self._buffer) - self._position
        if held == 0:
            chunk: bytes = self._sock.recv(max(bufsize, READ_CHUNK))
            if len(chunk) <= bufsize:
                return chunk  # all of it (or b"" at end of stream): nothing to hold back
            self._buffer, self._position, held = chunk, 0, len(chunk)
        start = self._position
        self._position = start + min(bufsize, held)
        return self._buffer[start:self._position]

    def take_packet(self) -> tuple[int, bytes] | None:
        """(first byte, rest after the length) of a packet wholly in the buffer, else None."""
        buffer, start = self._buffer, self._position
        length, multiplier, index = 0, 1, start + 1
        while True:
            if index >= len(buffer) or index - start > 4:
                return None  # header incomplete (or malformed: left to paho to refuse)
            byte = buffer[index]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            index += 1
            if not byte & 0x80:
                break
        end = index + length
        if end > len(buffer):
            return None
        self._position = end
        return buffer[start], buffer[index:end]

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buffer) - self._position + inner

    def send(self, buffer: bytes | bytearray) -> int:
        sent: int = self._sock.send(buffer)
        return sent

    def fileno(self) -> int:
        number: int = self._sock.fileno()
        return number

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._buffer, self._position = b"", 0
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        # settimeout, getpeername, ... : whatever else paho or ssl asks of the socket.
        return getattr(self._sock, name)


def _in_packet(command: int, body: bytes | bytearray) -> Any:
    """paho's record of the packet being read, as its _packet_read leaves it."""
    return {"command": command, "have_remaining": 1 if command else 0, "remaining_count": [],
            "remaining_mult": 1, "remaining_length": len(body), "packet": body,
            "to_process": 0, "pos": 0}


class CollectorMqttClient(mqtt.Client):
    """paho's Client with batched reads, a PUBLISH fast path and batched acknowledgements."""

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if self._transport == "websockets":
            return sock  # its wrapper frames reads itself
        return BufferedSocket(sock)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for _ in range(max(max_packets, MAX_PACKETS_PER_READ)):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_read(self) -> MQTTErrorCode:
        """A packet already whole in the buffer is handled in one step, else paho reads it."""
        sock = self._sock
        if not isinstance(sock, BufferedSocket) or self._in_packet["command"] != 0:
            return super()._packet_read()
        whole = sock.take_packet()
        if whole is None:
            return super()._packet_read()
        command, body = whole
        self._in_packet = _in_packet(command, body)
        try:
            rc = self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = _in_packet(0, bytearray())
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        return rc

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._per_topic_callbacks = True
        super().message_callback_add(sub, callback)

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        on_message = self.on_message
        if getattr(self, "_per_topic_callbacks", False) or on_message is None:
            super()._handle_on_message(message)
            return
        # paho's own path looks the topic up among per-topic callbacks under a lock; with
        # none registered that is pure overhead. Errors are handled as paho handles them.
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _handle_publish(self) -> MQTTErrorCode:
        message = self._decode_plain_publish()
        if message is None:
            return super()._handle_publish()
        if self._logger is not None and self._logger.isEnabledFor(logging.DEBUG):
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received PUBLISH (q%d, m%d) on %r (%d bytes)",
                           message.qos, message.mid, message._topic, len(message.payload))
        self._handle_on_message(message)
        if message.qos == 1 and not self._manual_ack:
            return self._send_puback(message.mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _decode_plain_publish(self) -> mqtt.MQTTMessage | None:
        """The message, if it is QoS 0/1 MQTT v5 without properties; None leaves it to paho.

        Anything unusual (QoS 2, properties, a length that does not add up) is None, so paho
        decodes it and raises its own errors for a malformed packet.
        """
        header: int = self._in_packet["command"]
        packet = self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if qos == 2 or self._protocol != MQTTProtocolVersion.MQTTv5 or len(packet) < 3:
            return None
        topic_end = 2 + int.from_bytes(packet[0:2], "big")
        position, mid = topic_end, 0
        if qos == 1:
            mid = int.from_bytes(packet[position:position + 2], "big")
            position += 2
        if position >= len(packet) or packet[position] != 0:
            return None  # truncated, or carries properties
        message = mqtt.MQTTMessage(mid=mid, topic=bytes(packet[2:topic_end]))
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.properties = _NO_PROPERTIES
        message.payload = bytes(packet[position + 1:])
        message.timestamp = time.monotonic()
        return message

    def ack_many(self, mids: Iterable[int]) -> MQTTErrorCode:
        """Acknowledge QoS 1 messages (manual_ack) with one queued write for all of them."""
        packet = b"".join(_PUBACK_PACKET.pack(_PUBACK, 2, mid) for mid in mids)
        if not packet:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        # Several PUBACKs back to back are a valid byte stream; paho writes queued packets
        # as opaque bytes, and mid 0 / QoS 0 keeps it from treating this one as a publish.
        return self._packet_queue(_PUBACK, packet, 0, 0)
