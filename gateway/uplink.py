"""The gateway's MQTT uplink: the outbox out at QoS 1, status with a Last Will, commands in.

- **Outbox**: rows are published in sequence order with at most ``max_inflight`` published
  and not yet acknowledged (paho and libmosquitto lose messages silently past 65,535
  unacknowledged); a row is deleted only when the broker's PUBACK arrives. A token bucket
  (``replay_rate_msgs_s``, ``replay_burst``) paces publishing, so a backlog after an outage
  replays at a bounded rate. A refused PUBACK (e.g. the broker ACL) keeps the row and pauses
  publishing for ``retry_after_refusal_s`` before resending from it: order is kept.
- **Status**: a retained ``online`` StatusMessage with the device inventory (the birth message)
  on every connect; a retained ``offline`` Last Will, also published on a clean stop.
- **Commands**: CommandMessages on ``.../commands`` are handed, one at a time on a worker
  thread, to a :class:`~gateway.sink.DeviceController`; each gets a CommandResult on
  ``.../results``. A redelivered command id is answered with its first result, not re-run.

The paho client is built by :func:`build_mqtt_client` (or by the caller) and passed in.
paho callbacks only record and hand off; they never raise into paho's loop.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from common.contract import (
    Channel,
    CommandMessage,
    CommandResult,
    DeviceInfo,
    StatusMessage,
    topic,
)
from common.settings import GatewaySettings, MqttSettings
from gateway.outbox import Outbox, OutboxRow
from gateway.sink import DeviceController

log = logging.getLogger(__name__)

_REMEMBERED_COMMANDS = 256
_CONTROL_HEADROOM = 16
_ACK_FLUSH_S = 0.05
_FULL_WINDOW_POLL_S = 0.05


def build_mqtt_client(mqtt_settings: MqttSettings, gateway: str) -> mqtt.Client:
    """A paho MQTT v5 client that logs in as the gateway (username = gateway id)."""
    username = mqtt_settings.username or gateway
    if username != gateway:
        # The broker ACL (deploy/mosquitto/acl) pins each user to ruralwater/v1/<username>/.
        raise ValueError(f"MQTT username {username!r} must be the gateway id {gateway!r}")
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=gateway,
        protocol=mqtt.MQTTv5,
    )
    client.enable_logger(logging.getLogger("gateway.mqtt"))
    password = mqtt_settings.password.get_secret_value() if mqtt_settings.password else None
    client.username_pw_set(username, password)
    if mqtt_settings.tls:
        client.tls_set(ca_certs=str(mqtt_settings.ca_file) if mqtt_settings.ca_file else None)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    # paho queues what it cannot send yet; the uplink itself bounds what it hands over.
    client.max_queued_messages_set(0)
    return client


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; rate 0 means unlimited."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self, wanted: int) -> int:
        if self.rate <= 0:
            return wanted
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def give_back(self, unused: int) -> None:
        if self.rate > 0:
            self._tokens = min(float(self.burst), self._tokens + unused)

    def wait_s(self) -> float:
        """How long until one more token is due."""
        return 0.0 if self.rate <= 0 else max(0.0, (1.0 - self._tokens) / self.rate)


class Uplink:
    def __init__(
        self,
        *,
        client: mqtt.Client,
        outbox: Outbox,
        controller: DeviceController,
        inventory: Sequence[DeviceInfo],
        mqtt_settings: MqttSettings,
        settings: GatewaySettings,
    ) -> None:
        self.gateway = outbox.gateway
        self._client = client
        self._outbox = outbox
        self._controller = controller
        self._inventory = list(inventory)
        self._mqtt_settings = mqtt_settings
        self._settings = settings
        self._bucket = TokenBucket(settings.replay_rate_msgs_s, settings.replay_burst)
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        # Filled on paho's thread, drained on the publisher thread: (mid, refused).
        self._acks: collections.deque[tuple[int, bool]] = collections.deque()
        self._inflight: dict[int, int] = {}  # mid -> seq; publisher thread only
        self._inflight_seqs: set[int] = set()
        self._acked: list[int] = []  # acknowledged, not yet deleted from the outbox
        self._acked_seqs: set[int] = set()
        self._acked_since = 0.0
        self._cursor = -1  # highest seq read from the outbox by this process
        self._ahead: collections.deque[OutboxRow] = collections.deque()
        self._read_ahead = 4 * settings.max_inflight
        self._wake_every = max(1, settings.max_inflight // 4)
        self._paused_until = 0.0
        self._refused_seqs: list[int] = []
        self._commands: queue.Queue[CommandMessage | None] = queue.Queue()
        self._results: collections.OrderedDict[str, CommandResult] = collections.OrderedDict()
        self.stats: collections.Counter[str] = collections.Counter()
        self._threads: list[threading.Thread] = []
        # paho's own window leaves room for status and command results beside the outbox's.
        client.max_inflight_messages_set(settings.max_inflight + _CONTROL_HEADROOM)
        client.on_connect = self._guarded(self._on_connect)
        client.on_disconnect = self._guarded(self._on_disconnect)
        client.on_publish = self._guarded(self._on_publish)
        client.on_message = self._guarded(self._on_message)
        outbox.subscribe(self._wake.set)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._client.will_set(topic(self.gateway, Channel.STATUS), self._status("offline"),
                              qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._settings.session_expiry_s
        self._client.connect_async(self._mqtt_settings.host, self._mqtt_settings.port,
                                   keepalive=self._mqtt_settings.keepalive_s,
                                   clean_start=False, properties=props)
        self._client.loop_start()
        for name, target in (("publisher", self._publish_loop), ("commands", self._command_loop)):
            thread = threading.Thread(target=target, name=f"uplink-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("uplink for %s started (%d devices)", self.gateway, len(self._inventory))

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop publishing, say offline (retained), leave the broker; the outbox keeps the rest."""
        self._stopping.set()
        self._wake.set()
        self._commands.put(None)
        for thread in self._threads:
            thread.join(timeout_s)
        if self._connected.is_set():
            info = self._client.publish(topic(self.gateway, Channel.STATUS),
                                        self._status("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("offline status not confirmed: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        log.info("uplink for %s stopped: %s", self.gateway, dict(self.stats))

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def snapshot(self) -> dict[str, Any]:
        return {"mqtt_connected": self._connected.is_set(), "inflight": len(self._inflight),
                **dict(self.stats), **self._outbox.snapshot()}

    def _status(self, state: str) -> str:
        inventory = self._inventory if state == "online" else []
        return StatusMessage(gateway=self.gateway, state=state,  # type: ignore[arg-type]
                             at=datetime.now(UTC), inventory=inventory).model_dump_json()

    # ----------------------------------------------------------------- paho callbacks

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        """paho re-raises a callback's exception and its network loop dies with it."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:  # noqa: BLE001 - the paho loop must survive any bug in a handler
                log.exception("MQTT callback %s failed", callback.__name__)
                self.stats["handler_errors"] += 1

        return guarded

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            self.stats["connect_refused"] += 1
            return
        client.subscribe(topic(self.gateway, Channel.COMMANDS), qos=1)
        client.publish(topic(self.gateway, Channel.STATUS), self._status("online"), qos=1,
                       retain=True)
        self.stats["connects"] += 1
        self._connected.set()
        self._wake.set()
        log.info("connected to %s:%d (session present: %s)", self._mqtt_settings.host,
                 self._mqtt_settings.port, flags.session_present)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("disconnected from the broker: %s", reason_code)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        self._acks.append((mid, bool(reason_code.is_failure)))
        # Wake the publisher per quarter window, not per PUBACK: waking it for every ack
        # costs more than the publishing itself during a replay.
        if len(self._acks) >= min(self._wake_every, max(1, len(self._inflight))):
            self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            command = CommandMessage.model_validate_json(message.payload)
        except ValidationError as exc:
            log.warning("invalid command on %s: %s", message.topic, exc.errors()[:3])
            self.stats["commands_invalid"] += 1
            return
        if command.gateway != self.gateway:
            log.warning("command %s is for %s, not us", command.command_id, command.gateway)
            self.stats["commands_invalid"] += 1
            return
        self._commands.put(command)

    # ----------------------------------------------------------------- publishing

    def _publish_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                wait_s = self._publish_round()
            except Exception:  # noqa: BLE001 - thread boundary: a dead publisher loses the uplink
                # Logged and counted (``publisher_errors``); the outbox keeps every row, and
                # the worst a half-done round leaves is a row resent after the next restart.
                log.exception("publisher round failed; retrying in 1 s")
                self.stats["publisher_errors"] += 1
                wait_s = 1.0
            if wait_s:
                self._wake.wait(wait_s)
        self._drain_acks()
        self._delete_acked(0.0, force=True)

    def _publish_round(self) -> float:
        self._drain_acks()
        return self._delete_acked(self._publish_some())

    def _delete_acked(self, wait_s: float, force: bool = False) -> float:
        """Delete acknowledged rows in batches (a transaction per PUBACK would cost more than
        the publishing): at half a window, after ``_ACK_FLUSH_S``, or when forced. A crash in
        between only repeats those messages, and the consumer overwrites repeats."""
        if not self._acked:
            return wait_s
        due = self._acked_since + _ACK_FLUSH_S - time.monotonic()
        if force or due <= 0 or len(self._acked) >= max(1, self._settings.max_inflight // 2):
            self._outbox.ack(self._acked)
            self.stats["acked"] += len(self._acked)
            self._acked_seqs.difference_update(self._acked)
            self._acked = []
            return wait_s
        return min(wait_s, due) if wait_s else due

    def _drain_acks(self) -> None:
        while self._acks:
            mid, refused = self._acks.popleft()
            seq = self._inflight.pop(mid, None)
            if seq is None:
                continue  # a status or result publish
            self._inflight_seqs.discard(seq)
            if refused:
                self._refused_seqs.append(seq)
            else:
                if not self._acked:
                    self._acked_since = time.monotonic()
                self._acked.append(seq)
                self._acked_seqs.add(seq)
        if self._refused_seqs and not self._paused_until:
            self.stats["refused"] += len(self._refused_seqs)
            log.error("broker refused %d message(s) from seq %d; retrying in %.0f s",
                      len(self._refused_seqs), min(self._refused_seqs),
                      self._settings.retry_after_refusal_s)
            self._paused_until = time.monotonic() + self._settings.retry_after_refusal_s

    def _publish_some(self) -> float:
        """Hand paho what the window and the bucket allow; return how long to sleep (0: none)."""
        if self._paused_until:
            remaining = self._paused_until - time.monotonic()
            if remaining > 0:
                return remaining
            self._ahead.clear()
            self._cursor = min(self._refused_seqs) - 1
            self._refused_seqs.clear()
            self._paused_until = 0.0
        room = self._settings.max_inflight - len(self._inflight)
        if not self._connected.is_set():
            return 1.0
        if room <= 0:
            return _FULL_WINDOW_POLL_S
        granted = self._bucket.take(room)
        if granted == 0:
            return max(self._bucket.wait_s(), 0.001)
        published = 0
        while published < granted and (row := self._next_row()) is not None:
            info = self._client.publish(topic(self.gateway, row.channel), row.payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # Not taken by paho: keep it first in line and try again later.
                log.warning("paho did not take seq %d: %s", row.seq, mqtt.error_string(info.rc))
                self._ahead.appendleft(row)
                break
            self._inflight[info.mid] = row.seq
            self._inflight_seqs.add(row.seq)
            published += 1
        self._bucket.give_back(granted - published)
        self.stats["published"] += published
        self.stats["inflight_max"] = max(self.stats["inflight_max"], len(self._inflight))
        return 0.0 if published == granted else 1.0

    def _next_row(self) -> OutboxRow | None:
        """The next row to publish, read ahead from the outbox a few windows at a time."""
        while True:
            if not self._ahead:
                self._ahead.extend(self._outbox.after(self._cursor, self._read_ahead))
                if not self._ahead:
                    return None
                self._cursor = self._ahead[-1].seq
            row = self._ahead.popleft()
            if row.seq not in self._inflight_seqs and row.seq not in self._acked_seqs:
                return row

    # ----------------------------------------------------------------- commands

    def _command_loop(self) -> None:
        while (command := self._commands.get()) is not None:
            result = self._results.get(command.command_id) or self._execute(command)
            self._remember(result)
            info = self._client.publish(topic(self.gateway, Channel.RESULTS),
                                        result.model_dump_json(), qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.error("result of %s not published: %s", command.command_id,
                          mqtt.error_string(info.rc))
                self.stats["results_unpublished"] += 1

    def _execute(self, command: CommandMessage) -> CommandResult:
        age_s = (datetime.now(UTC) - command.issued_at).total_seconds()
        if age_s > self._settings.command_max_age_s:
            self.stats["commands_expired"] += 1
            log.warning("command %s expired: issued %.0f s ago", command.command_id, age_s)
            return CommandResult(
                command_id=command.command_id, gateway=self.gateway, ok=False,
                detail=f"expired: issued {age_s:.0f} s ago, limit "
                       f"{self._settings.command_max_age_s:.0f} s", done_at=datetime.now(UTC))
        return self._run_command(command)

    def _run_command(self, command: CommandMessage) -> CommandResult:
        """Run one command. The controller talks to devices on field buses and may fail in
        ways of its own: this is the documented boundary that turns any failure into a
        result with ok=false, logs it and counts it."""
        try:
            detail = self._run_action(command)
            ok = True
            self.stats["commands_ok"] += 1
        except Exception as exc:  # noqa: BLE001 - see docstring: reported back, logged, counted
            log.warning("command %s (%s) failed: %s", command.command_id, command.action, exc)
            detail, ok = f"{type(exc).__name__}: {exc}", False
            self.stats["commands_failed"] += 1
        return CommandResult(command_id=command.command_id, gateway=self.gateway, ok=ok,
                             detail=detail[:500], done_at=datetime.now(UTC))

    def _run_action(self, command: CommandMessage) -> str:
        if command.action == "poll_now":
            return self._controller.poll_now(command.device)
        if command.device is None:
            raise ValueError(f"{command.action} needs a device")
        return self._controller.set_valve(command.device, command.action == "valve_open")

    def _remember(self, result: CommandResult) -> None:
        self._results[result.command_id] = result
        while len(self._results) > _REMEMBERED_COMMANDS:
            self._results.popitem(last=False)
