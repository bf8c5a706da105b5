"""Publish the simulation to MQTT at QoS 1, paced in simulated time, with bounded in-flight.

The paho client is built outside (:func:`build_client` is the usual recipe: MQTT v5, a
persistent session, reconnect back-off) and passed in, connected (:func:`connect`). Messages
the broker has not acknowledged stay in paho's queue and are sent again after a reconnect,
and messages published while the broker is away are queued and sent when it is back, so a
broker restart mid-stream loses nothing while this process lives
(``tests/simulator/test_publisher.py`` proves it against a real Mosquitto).
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.contract import Channel, DeviceInfo, StatusMessage, topic
from common.settings import MqttSettings
from simulator.county import County
from simulator.incidents import Incident
from simulator.messages import Outgoing

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 86400


def build_client(settings: MqttSettings, client_id: str, max_in_flight: int = 1000) -> mqtt.Client:
    """A paho 2.x MQTT v5 client with reconnect back-off and an unbounded outgoing queue."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id=client_id, protocol=mqtt.MQTTv5)
    client.enable_logger(logging.getLogger("simulator.mqtt"))
    if settings.username:
        client.username_pw_set(settings.username,
                               settings.password.get_secret_value() if settings.password else None)
    if settings.tls:
        client.tls_set(ca_certs=str(settings.ca_file) if settings.ca_file else None)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    client.max_inflight_messages_set(max_in_flight)
    # 0: unbounded. The Publisher bounds what is outstanding; paho must keep all of it.
    client.max_queued_messages_set(0)
    return client


def connect(client: mqtt.Client, settings: MqttSettings, timeout_s: float = 30,
            session_expiry_s: int = SESSION_EXPIRY_S) -> None:
    """Connect with a persistent session (clean_start=False) and start paho's network thread."""
    connected = threading.Event()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object,
                   properties: object) -> None:
        log.info("connected to the MQTT broker: %s", reason)
        connected.set()

    def on_disconnect(client: mqtt.Client, userdata: object, flags: object, reason: object,
                      properties: object) -> None:
        if getattr(reason, "is_failure", True):
            log.warning("MQTT connection lost (%s); paho reconnects and re-sends", reason)
        else:
            log.info("disconnected from the MQTT broker")

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s,
                         clean_start=False, properties=props)
    client.loop_start()
    if not connected.wait(timeout_s):
        client.loop_stop()
        raise ConnectionError(f"no MQTT broker at {settings.host}:{settings.port}")


@dataclass
class Progress:
    """Counters of a run so far; handed to the progress callback."""

    messages: int = 0
    readings: dict[str, int] = field(default_factory=dict)
    events: int = 0
    acknowledged: int = 0
    gateways: int = 0
    incidents_started: int = 0
    incidents_total: int = 0
    sim_time: datetime | None = None
    wall_s: float = 0.0

    @property
    def total_readings(self) -> int:
        return sum(self.readings.values())

    @property
    def readings_per_s(self) -> float:
        return self.total_readings / self.wall_s if self.wall_s else 0.0


class Publisher:
    """QoS 1 publishing paced by ``speed`` (simulated s per wall s; 0 = as fast as possible).

    At most ``max_in_flight`` messages are unacknowledged at a time: publishing waits on the
    broker's PUBACKs (a condition variable signalled by paho's callback), never on a sleep.
    """

    def __init__(self, client: mqtt.Client, *, speed: float, max_in_flight: int = 1000,
                 progress: Callable[[Progress], None] | None = None,
                 progress_every_s: float = 1.0, incidents: list[Incident] | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._client = client
        self._speed = speed
        self._max_in_flight = max(1, max_in_flight)
        self._report = progress
        self._report_every = progress_every_s
        self._acked = 0
        self._sent = 0
        self._cond = threading.Condition()
        self._gateways: set[str] = set()
        self._incident_starts = sorted(i.start for i in incidents or [])
        client.on_publish = self._on_publish
        self.progress = Progress(incidents_total=len(self._incident_starts))

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason_code: object,
                    properties: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def _send(self, name: str, payload: bytes | str, retain: bool = False) -> None:
        self._wait_for_room()
        with self._cond:
            self._sent += 1
        # While disconnected paho queues the message (rc NO_CONN) and sends it on reconnect.
        info = self._client.publish(name, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise ConnectionError(f"publish to {name} refused: {mqtt.error_string(info.rc)}")

    def announce(self, county: County) -> None:
        """Retained 'online' status with the device inventory, as each gateway's birth."""
        inventory: dict[str, list[DeviceInfo]] = {g.village: [] for g in county.gateways}
        for h in county.households:
            inventory[h.village].append(DeviceInfo(device=h.meter, kind="meter",
                                                   village=h.village, dma=h.dma))
        for w in county.wells:
            inventory[w.village].append(DeviceInfo(device=w.id, kind="pump", village=w.village,
                                                   dma=f"dma-{w.village}"))
        for t in county.tanks:
            inventory[t.village].append(DeviceInfo(device=t.id, kind="tank", village=t.village))
        for d in county.dmas:
            inventory[d.village].append(DeviceInfo(device=d.inflow_meter, kind="dma_inflow",
                                                   village=d.village, dma=d.id))
        for a in county.analysers:
            inventory[a.village].append(DeviceInfo(device=a.id, kind="quality",
                                                   village=a.village, dma=f"dma-{a.village}"))
        for gateway in county.gateways:
            status = StatusMessage(gateway=gateway.id, state="online",
                                   inventory=inventory[gateway.village])
            self._send(topic(gateway.id, Channel.STATUS), status.model_dump_json(), retain=True)

    def publish(self, stream: Iterable[Outgoing]) -> Progress:
        """Publish every message, paced; return once the broker acknowledged all of them."""
        started = time.monotonic()
        last_report = started
        sim_start: datetime | None = None
        for item in stream:
            sim_start = sim_start or item.sim_time
            self._pace(started, (item.sim_time - sim_start).total_seconds())
            self._send(item.topic, item.payload)
            self._count(item)
            now = time.monotonic()
            if self._report and now - last_report >= self._report_every:
                self.progress.wall_s = now - started
                self.progress.acknowledged = self._acked
                self._report(self.progress)
                last_report = now
        self.wait_acknowledged()
        self.progress.wall_s = time.monotonic() - started
        return self.progress

    def _pace(self, started: float, sim_elapsed_s: float) -> None:
        if self._speed <= 0:
            return
        delay = started + sim_elapsed_s / self._speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _wait_for_room(self) -> None:
        with self._cond:
            # The timeout only bounds each wait; a PUBACK wakes us at once.
            while self._sent - self._acked >= self._max_in_flight:
                self._cond.wait(5.0)

    def wait_acknowledged(self, timeout_s: float | None = None) -> bool:
        """Wait until the broker acknowledged everything sent; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._acked < self._sent:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(5.0 if remaining is None else min(5.0, remaining))
            self.progress.acknowledged = self._acked
        return True

    def _count(self, item: Outgoing) -> None:
        progress = self.progress
        progress.messages += 1
        progress.events += item.events
        progress.sim_time = item.sim_time
        for kind, count in item.readings.items():
            progress.readings[kind] = progress.readings.get(kind, 0) + count
        if item.gateway and item.gateway not in self._gateways:
            self._gateways.add(item.gateway)
            progress.gateways = len(self._gateways)
        progress.incidents_started = bisect.bisect_right(self._incident_starts, item.sim_time)
