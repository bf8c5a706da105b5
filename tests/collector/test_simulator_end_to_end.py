"""The county simulator through the real broker and collector into the real InfluxDB."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from collector.service import Collector
from common.influx import InfluxClient
from common.localservices import Mosquitto
from common.settings import MqttSettings
from simulator.publisher import build_client, connect
from simulator.session import RunPlan, run
from tests.collector.helpers import wait_for


def simulate(tmp_path: Path, mqtt_settings: MqttSettings, speed: float = 0, days: float = 1):
    plan = RunPlan(seed=5, villages=3, households_per_village=25, days=days, speed=speed,
                   output_dir=tmp_path / "truth")
    client = build_client(mqtt_settings, "simulator-test")
    connect(client, mqtt_settings)
    try:
        return plan, run(plan, client)
    finally:
        client.disconnect()
        client.loop_stop()


def test_simulated_county_lands_reading_for_reading_with_its_tags(
    tmp_path: Path, collector: Collector, mqtt_settings: MqttSettings, influx: InfluxClient
) -> None:
    plan, result = simulate(tmp_path, mqtt_settings)
    field_of = {"meter": "volume_m3", "pump": "flow_m3h", "tank": "level_m",
                "dma_inflow": "flow_m3h", "quality": "turbidity_ntu"}
    wait_for(lambda: all(influx.count(kind, field_of[kind]) >= n
                         for kind, n in result.readings.items()), 120, "every reading")
    for kind, sent in result.readings.items():
        assert influx.count(kind, field_of[kind]) == sent, kind
    gateways = influx.query('SHOW TAG VALUES FROM "meter" WITH KEY = "gateway"')[0].values
    assert sorted(value for _, value in gateways) == ["gw-v001", "gw-v002", "gw-v003"]
    dma_of_village = influx.query(
        'SELECT count("flow_m3h") FROM "dma_inflow" GROUP BY "village", "dma"')
    assert {(s.tags["village"], s.tags["dma"]) for s in dma_of_village} == {
        ("v001", "dma-v001"), ("v002", "dma-v002"), ("v003", "dma-v003")}
    assert influx.count("gateway_status", "online") == 3
    truth = json.loads((plan.output_dir / "summary.json").read_text())
    assert truth["readings_total"] == result.total_readings
    assert (plan.output_dir / "register.json").exists()
    assert (plan.output_dir / "incidents.json").exists()


def test_broker_restart_mid_publish_loses_no_simulated_reading(
    tmp_path: Path, collector: Collector, mqtt_settings: MqttSettings, mosquitto: Mosquitto,
    influx: InfluxClient,
) -> None:
    def outage() -> None:
        time.sleep(2)
        mosquitto.stop()
        time.sleep(5)
        mosquitto.start()

    threading.Thread(target=outage, daemon=True).start()
    # A day in about six seconds, so the broker goes down mid-stream.
    _, result = simulate(tmp_path, mqtt_settings, speed=86400 / 6)
    wait_for(lambda: influx.count("meter", "volume_m3") >= result.readings["meter"], 120,
             "every meter reading")
    assert influx.count("meter", "volume_m3") == result.readings["meter"]
    assert influx.count("pump", "flow_m3h") == result.readings["pump"]
