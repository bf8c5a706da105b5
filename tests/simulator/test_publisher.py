"""Publishing through a real Mosquitto: every (gateway, seq) arrives, across a broker restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.contract import Channel, StatusMessage, subscription
from common.localservices import Mosquitto
from common.settings import MqttSettings
from simulator.publisher import Progress, Publisher, build_client, connect
from simulator.session import RunPlan, prepare
from tests.simulator.helpers import START

REPO = Path(__file__).resolve().parents[2]


class Subscriber:
    """A persistent QoS 1 subscriber that records every (gateway, seq) and status it gets."""

    def __init__(self, settings: MqttSettings) -> None:
        self.received: set[tuple[str, int]] = set()
        self.statuses: dict[str, StatusMessage] = {}
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id="simulator-test-subscriber", protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(settings.host, settings.port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if not flags.session_present:
            client.subscribe([(subscription(Channel.TELEMETRY), 1),
                              (subscription(Channel.EVENTS), 1),
                              (subscription(Channel.STATUS), 1)])

    def _on_message(self, client, userdata, message) -> None:
        if message.topic.endswith("/status"):
            status = StatusMessage.model_validate_json(message.payload)
            self.statuses[status.gateway] = status
            return
        payload = json.loads(message.payload)
        with self.lock:
            self.received.add((payload["gateway"], payload["seq"]))

    def wait_for(self, expected: set[tuple[str, int]], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if expected <= self.received:
                    return
            time.sleep(0.2)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mqtt_settings: MqttSettings) -> Iterator[Subscriber]:
    client = Subscriber(mqtt_settings)
    assert client.subscribed.wait(10)
    yield client
    client.close()


@pytest.fixture
def publisher_client(mqtt_settings: MqttSettings) -> Iterator[mqtt.Client]:
    client = build_client(mqtt_settings, "simulator-test-publisher", max_in_flight=100)
    connect(client, mqtt_settings)
    yield client
    client.disconnect()
    client.loop_stop()


def test_every_gateway_sequence_arrives_across_a_broker_restart_mid_stream(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber,
    publisher_client: mqtt.Client,
) -> None:
    plan = RunPlan(seed=4, villages=2, households_per_village=20, days=1, speed=86400 / 6,
                   output_dir=tmp_path / "truth", start=START)
    expected = {(m.gateway, m.seq) for m in prepare(plan).messages()}
    prepared = prepare(plan)
    reports: list[Progress] = []
    publisher = Publisher(publisher_client, speed=plan.speed, max_in_flight=100,
                          incidents=prepared.incidents, progress=reports.append,
                          progress_every_s=0.5)
    sent_before_outage: list[int] = []

    def outage() -> None:
        time.sleep(2)
        sent_before_outage.append(publisher.progress.messages)
        mosquitto.stop()
        time.sleep(2)
        mosquitto.start()

    restart = threading.Thread(target=outage)
    restart.start()
    publisher.announce(prepared.county)
    result = publisher.publish(prepared.messages())
    restart.join()
    subscriber.wait_for(expected)

    assert 0 < sent_before_outage[0] < len(expected)  # the broker went down mid-stream
    assert expected <= subscriber.received
    assert {gateway for gateway, _ in subscriber.received} == {"gw-v001", "gw-v002"}
    assert result.messages == len(expected) == result.acknowledged - len(prepared.county.gateways)
    assert result.gateways == 2
    assert result.incidents_total == len(prepared.incidents)
    assert result.incidents_started == len(prepared.incidents)
    assert reports and reports[-1].readings_per_s > 0
    assert set(subscriber.statuses) == {"gw-v001", "gw-v002"}
    inventory = {d.kind for d in subscriber.statuses["gw-v001"].inventory}
    assert inventory == {"meter", "pump", "tank", "dma_inflow", "quality"}


def test_cli_publishes_a_small_county_and_writes_the_ground_truth(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber,
) -> None:
    env = os.environ | {"RURALWATER_MQTT__HOST": "127.0.0.1",
                        "RURALWATER_MQTT__PORT": str(mosquitto.port)}
    out = tmp_path / "truth"
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "--villages", "1", "--households-per-village", "8",
         "--days", "0.25", "--speed", "0", "--seed", "9", "--output-dir", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "published" in done.stdout and "1 gateways" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    incidents = json.loads((out / "incidents.json").read_text())
    register = json.loads((out / "register.json").read_text())
    assert len(register["households"]) == 8
    assert summary["readings"]["meter"] > 0 and summary["messages"] > 0
    assert {i["kind"] for i in incidents} >= {"burst", "demand_surge"}
    subscriber.wait_for({("gw-v001", summary["messages"] - 1)})
    assert ("gw-v001", summary["messages"] - 1) in subscriber.received
