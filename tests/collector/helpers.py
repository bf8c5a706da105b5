"""Test-side tools: a paho publisher of contract messages, a collector subprocess, waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.contract import Channel, MeterReading, Reading, TelemetryMessage, topic
from common.localservices import free_port

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll until ``condition`` holds; fail with ``what`` if it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def meter_messages(
    gateways: int, messages_per_gateway: int, readings_per_message: int,
    start: datetime | None = None,
) -> Iterator[TelemetryMessage]:
    """Meter readings with unique (device, time), so InfluxDB counts are exact."""
    start = start or datetime.now(UTC) - timedelta(hours=6)
    for number in range(messages_per_gateway):
        for g in range(gateways):
            gateway = f"gw-t{g:03d}"
            readings: list[Reading] = [
                MeterReading(
                    device=f"m{g:03d}{r:05d}", time=start + timedelta(seconds=number),
                    village=f"v{g:03d}", dma=f"dma-v{g:03d}", volume_m3=number * 0.01 + r,
                    valve="open", balance_yuan=50.0,
                )
                for r in range(readings_per_message)
            ]
            yield TelemetryMessage(gateway=gateway, seq=number, sent_at=start, readings=readings)


@dataclass
class Publisher:
    """A QoS 1 publisher with a persistent session, like a gateway's."""

    port: int
    client_id: str = "test-publisher"
    client: mqtt.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        self.client.loop_start()

    def publish(self, name: str, payload: bytes | str) -> mqtt.MQTTMessageInfo:
        return self.client.publish(name, payload, qos=1)

    def publish_message(self, message: TelemetryMessage) -> mqtt.MQTTMessageInfo:
        return self.publish(topic(message.gateway, Channel.TELEMETRY), message.model_dump_json())

    def publish_all(self, messages: Iterator[TelemetryMessage], pause: Callable[[int], None]
                    | None = None) -> int:
        sent = 0
        infos = []
        for index, message in enumerate(messages):
            if pause:
                pause(index)
            infos.append(self.publish_message(message))
            sent += len(message.readings)
        self.infos = infos
        return sent

    def wait_all_acked(self, timeout_s: float = 120) -> None:
        wait_for(lambda: all(i.is_published() for i in self.infos), timeout_s,
                 "the broker to acknowledge every publish")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class CollectorProcess:
    """``python -m collector`` as a child process, so tests can SIGKILL it."""

    def __init__(self, data_dir: Path, mqtt_port: int, influx_url: str, database: str,
                 **extra_env: str) -> None:
        self.health_port = free_port()
        self.data_dir = data_dir
        self.env = os.environ | {
            "RURALWATER_MQTT__PORT": str(mqtt_port),
            "RURALWATER_INFLUX__URL": influx_url,
            "RURALWATER_INFLUX__DATABASE": database,
            "RURALWATER_INFLUX__TIMEOUT_S": "3",
            "RURALWATER_COLLECTOR__DATA_DIR": str(data_dir),
            "RURALWATER_COLLECTOR__HEALTH_PORT": str(self.health_port),
            "RURALWATER_COLLECTOR__CLIENT_ID": "collector-test",
            "RURALWATER_COLLECTOR__RETRY_MAX_S": "2",
            "RURALWATER_COLLECTOR__STATS_INTERVAL_S": "5",
        } | extra_env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.data_dir.parent / "collector.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "collector"], cwd=REPO,
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.health().get("mqtt_connected", False), 30,
                 "the collector to connect")

    def health(self) -> dict:
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}/health", timeout=1).json()
        except httpx.HTTPError:
            return {}

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        """SIGTERM, as systemd or docker stop sends; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.terminate()


def in_background(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
