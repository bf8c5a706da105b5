"""The collector service: MQTT v5 in, validated points through the writer, acks after.

The paho client is built by :func:`build_mqtt_client` and passed in, so tests and other
programs can hand the service any connection. Callbacks only decode and hand off; they never
raise into paho's loop (a failure is logged and counted).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.deadletter import DeadLetterStore
from collector.health import HealthServer
from collector.ingest import IngestPolicy, decode
from collector.mqtt_client import CollectorMqttClient
from collector.sequence import SequenceTracker
from collector.spool import Spool
from collector.stats import Stats
from collector.writer import Pending, Writer
from common.contract import Channel, subscription
from common.influx import InfluxClient, InfluxError
from common.settings import CollectorSettings, MqttSettings

log = logging.getLogger(__name__)


def build_mqtt_client(mqtt_settings: MqttSettings,
                      settings: CollectorSettings) -> CollectorMqttClient:
    client = CollectorMqttClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.enable_logger(logging.getLogger("collector.mqtt"))
    if mqtt_settings.username:
        password = mqtt_settings.password.get_secret_value() if mqtt_settings.password else None
        client.username_pw_set(mqtt_settings.username, password)
    if mqtt_settings.tls:
        client.tls_set(ca_certs=str(mqtt_settings.ca_file) if mqtt_settings.ca_file else None)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


def connect_properties(settings: CollectorSettings) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = settings.session_expiry_s
    props.ReceiveMaximum = settings.receive_maximum
    return props


class Collector:
    def __init__(
        self,
        *,
        mqtt_client: CollectorMqttClient,
        mqtt_settings: MqttSettings,
        influx: InfluxClient,
        settings: CollectorSettings,
    ) -> None:
        self._client = mqtt_client
        self._mqtt_settings = mqtt_settings
        self._settings = settings
        self._influx = influx
        self.stats = Stats()
        self.sequences = SequenceTracker()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.dead_letters = DeadLetterStore(settings.data_dir / "deadletter.sqlite3",
                                            max_raw_bytes=settings.max_message_bytes)
        self.spool = Spool(settings.data_dir / "spool.sqlite3", settings.spool_max_bytes)
        self._policy = IngestPolicy(
            max_message_bytes=settings.max_message_bytes,
            max_readings_per_message=settings.max_readings_per_message,
            max_future=timedelta(seconds=settings.max_future_s),
            max_age=timedelta(days=settings.max_age_days),
        )
        self.writer = Writer(
            influx=influx, spool=self.spool, dead_letters=self.dead_letters, stats=self.stats,
            ack=self._ack, batch_max_points=settings.batch_max_points,
            batch_max_delay_s=settings.batch_max_delay_s,
            flush_at_messages=settings.receive_maximum // 2,
            retry_initial_s=settings.retry_initial_s, retry_max_s=settings.retry_max_s,
        )
        self.health = HealthServer(settings.health_host, settings.health_port, self.snapshot)
        # Bumped on every (re)connect: acks for messages received on an older connection are
        # not sent, because the broker redelivers those and may have reused their packet ids.
        self._generation = 0
        # Link up: acknowledgements may be sent. Connected (what /health reports and
        # wait_connected waits for) comes later, with the SUBACK: before it, a fresh session
        # drops what is published.
        self._link_up = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._client.on_connect = self._guarded(self._on_connect)
        self._client.on_disconnect = self._guarded(self._on_disconnect)
        self._client.on_subscribe = self._guarded(self._on_subscribe)
        self._client.on_message = self._on_message

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._influx_ensure_database()
        self.writer.start()
        self.health.start()
        self._client.connect_async(
            self._mqtt_settings.host, self._mqtt_settings.port,
            keepalive=self._mqtt_settings.keepalive_s, clean_start=False,
            properties=connect_properties(self._settings),
        )
        self._client.loop_start()
        log.info("collector %s started; health on port %d", self._settings.client_id,
                 self.health.port)

    def _influx_ensure_database(self) -> None:
        try:
            self._influx.ensure_database()
        except InfluxError as exc:
            # Not fatal: readings spool until InfluxDB answers.
            log.warning("could not create the database yet: %s", exc)

    def stop(self) -> None:
        """Flush and acknowledge what was received, then leave the broker."""
        # Take no more: under load the writer would otherwise never find its queue empty.
        # What arrives from now on stays unacknowledged and comes back at the next start.
        self._stopping.set()
        self.writer.stop()
        self._client.disconnect()
        self._client.loop_stop()
        self.health.stop()
        self.spool.close()
        self.dead_letters.close()
        log.info("collector stopped: %s", self.snapshot())

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until connected and subscribed: from then on nothing published is missed."""
        return self._connected.wait(timeout_s)

    def snapshot(self) -> dict[str, Any]:
        counters = self.stats.snapshot()
        counters["duplicates"] = self.sequences.duplicates
        counters["gaps"] = self.sequences.gaps
        return {
            "status": "ok",
            "mqtt_connected": self._connected.is_set(),
            "influx_up": self.writer.influx_up,
            "spool_batches": self.spool.batches,
            "spool_bytes": self.spool.bytes,
            "queued_messages": self.writer.queued,
            **counters,
        }

    # ----------------------------------------------------------------- paho callbacks

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        """paho re-raises a callback's exception and its network loop dies with it."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:  # noqa: BLE001 - the paho loop must survive any bug in a handler
                log.exception("MQTT callback %s failed", callback.__name__)
                self.stats.add(handler_errors=1)

        return guarded

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self._generation += 1
        self._link_up.set()
        group = self._settings.share_group
        qos1 = SubscribeOptions(qos=1)
        client.subscribe([
            (subscription(Channel.TELEMETRY, group), qos1),
            (subscription(Channel.EVENTS, group), qos1),
            # Retained status is not delivered to shared subscriptions: read it plainly. Only
            # a new subscription gets the retained copies; a resumed session already stored
            # them, and a Last Will without `at` would be stored again at each reconnect.
            (subscription(Channel.STATUS), SubscribeOptions(
                qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)),
        ])
        log.info("connected to %s:%d (session present: %s)", self._mqtt_settings.host,
                 self._mqtt_settings.port, flags.session_present)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: list[Any], properties: Any) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            # Typically the broker ACL: nothing will arrive on that filter.
            log.error("broker refused %d subscription(s): %s", len(refused), ", ".join(refused))
            self.stats.add(subscriptions_refused=len(refused))
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self._link_up.clear()
        self._connected.clear()
        log.warning("disconnected from the broker: %s", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return
        try:
            self._handle(message)
        except Exception:  # noqa: BLE001 - the paho loop must survive any bug in a handler
            log.exception("handler failed on %s; message left unacknowledged", message.topic)
            self.stats.add(handler_errors=1)

    def _handle(self, message: mqtt.MQTTMessage) -> None:
        topic = message.topic  # decoded from bytes on every access
        decoded = decode(topic, bytes(message.payload), datetime.now(UTC), self._policy)
        self.stats.count_message(readings=decoded.readings, events=decoded.events,
                                 rejections=len(decoded.rejections),
                                 message_rejected=decoded.message_rejected)
        for rejection in decoded.rejections:
            log.warning("dead letter from %s: %s", topic, rejection.reason)
            self.dead_letters.add(topic, decoded.gateway, rejection.reason, rejection.raw)
        if decoded.gateway is not None and decoded.seq is not None:
            self.sequences.observe(decoded.gateway, decoded.seq)
        self.writer.submit(Pending(mid=message.mid, qos=message.qos, lines=decoded.lines,
                                   topic=topic, generation=self._generation))

    def _ack(self, batch: list[Pending]) -> None:
        if not self._link_up.is_set():
            return  # the broker redelivers them; InfluxDB overwrites the duplicates
        generation = self._generation
        # Messages from an older connection come back anyway, maybe under reused ids.
        self._client.ack_many(item.mid for item in batch
                              if item.qos == 1 and item.generation == generation)


def run_until(stop: threading.Event, collector: Collector, stats_interval_s: float) -> None:
    """Run until ``stop`` is set, logging a stats line every ``stats_interval_s``."""
    collector.start()
    try:
        while not stop.wait(stats_interval_s):
            snap = collector.snapshot()
            log.info(
                "in=%d readings=%d written=%d invalid=%d/%d dead=%d spool=%d lag=%.2fs",
                snap["messages_in"], snap["readings_in"], snap["points_written"],
                snap["invalid_messages"], snap["invalid_readings"], snap["dead_letters"],
                snap["spool_batches"], snap["lag_last_s"],
            )
    finally:
        collector.stop()
