"""Publish the simulation to MQTT at QoS 1, paced in simulated time, with bounded in-flight.

The paho client is built outside (:func:`build_client`) and passed in. Messages the broker
has not acknowledged stay in paho's queue and are sent again after a reconnect, so a broker
restart mid-stream loses nothing while this process lives.
"""

from __future__ import annotations

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
from simulator.engine import Outgoing

log = logging.getLogger(__name__)


def build_client(settings: MqttSettings, client_id: str, max_in_flight: int = 1000) -> mqtt.Client:
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
    client.max_queued_messages_set(0)
    return client


def connect(client: mqtt.Client, settings: MqttSettings, timeout_s: float = 30) -> None:
    """Connect with a persistent session and start paho's network thread."""
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 86400
    client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s,
                         clean_start=False, properties=props)
    client.loop_start()
    if not connected.wait(timeout_s):
        raise ConnectionError(f"no MQTT broker at {settings.host}:{settings.port}")


@dataclass
class Progress:
    messages: int = 0
    readings: dict[str, int] = field(default_factory=dict)
    events: int = 0
    acknowledged: int = 0
    sim_time: datetime | None = None
    wall_s: float = 0.0

    @property
    def total_readings(self) -> int:
        return sum(self.readings.values())

    @property
    def readings_per_s(self) -> float:
        return self.total_readings / self.wall_s if self.wall_s else 0.0


class Publisher:
    def __init__(self, client: mqtt.Client, *, speed: float, max_in_flight: int = 1000,
                 progress: Callable[[Progress], None] | None = None,
                 progress_every_s: float = 1.0) -> None:
        self._client = client
        self._speed = speed
        self._max_in_flight = max_in_flight
        self._report = progress
        self._report_every = progress_every_s
        self._acked = 0
        self._sent = 0
        self._cond = threading.Condition()
        client.on_publish = self._on_publish
        self.progress = Progress()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason_code: object,
                    properties: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def announce(self, county: County) -> None:
        """Retained 'online' status with the device inventory, as each gateway's birth."""
        for gateway in county.gateways:
            inventory = [DeviceInfo(device=h.meter, kind="meter", village=h.village, dma=h.dma)
                         for h in county.households if h.village == gateway.village]
            status = StatusMessage(gateway=gateway.id, state="online", inventory=inventory)
            self._client.publish(topic(gateway.id, Channel.STATUS), status.model_dump_json(),
                                 qos=1, retain=True)
            with self._cond:
                self._sent += 1

    def publish(self, stream: Iterable[Outgoing]) -> Progress:
        started = time.monotonic()
        last_report = started
        sim_start: datetime | None = None
        for item in stream:
            sim_start = sim_start or item.sim_time
            self._pace(started, (item.sim_time - sim_start).total_seconds())
            self._wait_for_room()
            self._client.publish(item.topic, item.payload, qos=1)
            with self._cond:
                self._sent += 1
            self._count(item)
            now = time.monotonic()
            if self._report and now - last_report >= self._report_every:
                self.progress.wall_s = now - started
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
            while self._sent - self._acked >= self._max_in_flight:
                self._cond.wait(1.0)

    def wait_acknowledged(self, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._acked < self._sent:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(1.0 if remaining is None else min(1.0, remaining))
            self.progress.acknowledged = self._acked
        return True

    def _count(self, item: Outgoing) -> None:
        progress = self.progress
        progress.messages += 1
        progress.events += item.events
        progress.sim_time = item.sim_time
        for kind, count in item.readings.items():
            progress.readings[kind] = progress.readings.get(kind, 0) + count
