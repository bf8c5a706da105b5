"""Readings published to the real broker land in the real InfluxDB exactly once."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import httpx

from collector.service import Collector
from common.contract import Channel, DeviceEvent, EventMessage, StatusMessage, topic
from common.influx import InfluxClient
from common.localservices import Mosquitto
from tests.collector.helpers import Publisher, meter_messages, wait_for


def test_every_reading_from_several_gateways_lands_once_with_its_tags(
    collector: Collector, publisher: Publisher, influx: InfluxClient
) -> None:
    sent = publisher.publish_all(meter_messages(gateways=3, messages_per_gateway=20,
                                                readings_per_message=10))
    assert sent == 600
    wait_for(lambda: influx.count("meter", "volume_m3") >= sent, 60, "600 points")
    assert influx.count("meter", "volume_m3") == sent
    per_gateway = influx.query('SELECT count("volume_m3") FROM "meter" GROUP BY "gateway"')
    assert {s.tags["gateway"]: s.values[0][1] for s in per_gateway} == {
        "gw-t000": 200, "gw-t001": 200, "gw-t002": 200}
    one = influx.query("SELECT * FROM \"meter\" WHERE \"device\" = 'm00100003' LIMIT 1")
    row = one[0].records()[0]
    assert (row["village"], row["dma"], row["gateway"]) == ("v001", "dma-v001", "gw-t001")
    assert collector.snapshot()["points_written"] == sent


def test_readings_published_with_mosquitto_pub_are_ingested(
    collector: Collector, mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    payload = {
        "schema_version": 1, "gateway": "gw-cli", "seq": 0, "sent_at": now.isoformat(),
        "readings": [{"kind": "quality", "device": "aq-v001", "time": now.isoformat(),
                      "village": "v001", "turbidity_ntu": 0.4, "free_chlorine_mgl": 0.6,
                      "ph": 7.4}],
    }
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", "1", "-V", "5",
         "-t", topic("gw-cli", Channel.TELEMETRY), "-m", json.dumps(payload)],
        check=True, timeout=10,
    )
    wait_for(lambda: influx.count("quality", "ph") == 1, 30, "the mosquitto_pub reading")
    row = influx.query('SELECT "ph", "free_chlorine_mgl" FROM "quality"')[0].records()[0]
    assert (row["ph"], row["free_chlorine_mgl"]) == (7.4, 0.6)


def test_events_and_gateway_status_are_stored(
    collector: Collector, publisher: Publisher, influx: InfluxClient
) -> None:
    now = datetime.now(UTC)
    event = DeviceEvent(device="78330011223344", device_kind="meter", time=now, village="v001",
                        dma="dma-v001", code="valve_closed", severity="critical",
                        message="valve closed at zero balance")
    publisher.publish(topic("gw-v001", Channel.EVENTS),
                      EventMessage(gateway="gw-v001", seq=0, sent_at=now,
                                   events=[event]).model_dump_json())
    publisher.publish(topic("gw-v001", Channel.STATUS),
                      StatusMessage(gateway="gw-v001", state="online", at=now).model_dump_json())
    wait_for(lambda: influx.count("event", "severity") == 1
             and influx.count("gateway_status", "online") == 1, 30, "event and status")
    row = influx.query('SELECT * FROM "event"')[0].records()[0]
    assert (row["code"], row["severity"], row["device_kind"]) == (
        "valve_closed", "critical", "meter")


def test_sequence_gaps_and_duplicates_are_counted(
    collector: Collector, publisher: Publisher, influx: InfluxClient
) -> None:
    messages = list(meter_messages(gateways=1, messages_per_gateway=6, readings_per_message=1))
    for index in (0, 1, 3, 3, 5, 2):  # 4 never comes; 3 twice; 2 arrives late
        publisher.publish_message(messages[index])
    wait_for(lambda: collector.snapshot()["messages_in"] == 6, 30, "six messages")
    snap = collector.snapshot()
    assert snap["duplicates"] == 1
    assert snap["gaps"] == 1
    wait_for(lambda: influx.count("meter", "volume_m3") == 5, 30, "five distinct readings")


def test_health_and_metrics_serve_the_counters(
    collector: Collector, publisher: Publisher, influx: InfluxClient
) -> None:
    publisher.publish_all(meter_messages(gateways=1, messages_per_gateway=3,
                                         readings_per_message=4))
    wait_for(lambda: influx.count("meter", "volume_m3") == 12, 30, "12 points")
    base = f"http://127.0.0.1:{collector.health.port}"
    health = httpx.get(f"{base}/health", timeout=5).json()
    assert health["status"] == "ok" and health["mqtt_connected"] and health["influx_up"]
    assert health["readings_in"] == 12 and health["points_written"] == 12
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert "ruralwater_collector_points_written 12" in metrics
    assert "ruralwater_collector_spool_batches 0" in metrics
    assert "# TYPE ruralwater_collector_points_written counter" in metrics
    assert "# TYPE ruralwater_collector_spool_bytes gauge" in metrics


def test_two_collectors_in_a_shared_group_split_the_stream(
    tmp_path, mqtt_settings, influx_settings, influx: InfluxClient, publisher: Publisher
) -> None:
    from collector.service import build_mqtt_client
    from common.settings import CollectorSettings

    members = []
    for name in ("collector-a", "collector-b"):
        settings = CollectorSettings(client_id=name, share_group="collectors",
                                     data_dir=tmp_path / name, health_port=0,
                                     batch_max_delay_s=0.2)
        member = Collector(mqtt_client=build_mqtt_client(mqtt_settings, settings),
                           mqtt_settings=mqtt_settings, influx=InfluxClient(influx_settings),
                           settings=settings)
        member.start()
        assert member.wait_connected(15)
        members.append(member)
    try:
        sent = publisher.publish_all(meter_messages(gateways=2, messages_per_gateway=50,
                                                    readings_per_message=3))
        wait_for(lambda: influx.count("meter", "volume_m3") >= sent, 60, f"{sent} points")
        assert influx.count("meter", "volume_m3") == sent
        shares = [m.snapshot()["messages_in"] for m in members]
        assert sum(shares) == 100 and min(shares) > 0, shares
    finally:
        for member in members:
            member.stop()


def test_a_retained_last_will_is_stored_once_not_again_at_each_reconnect(
    collector: Collector, publisher: Publisher, mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    # A Last Will carries no time, so each delivery would be stored at its time of receipt.
    will = StatusMessage(gateway="gw-v002", state="offline").model_dump_json()
    publisher.client.publish(topic("gw-v002", Channel.STATUS), will, qos=1, retain=True)
    wait_for(lambda: influx.count("gateway_status", "online") == 1, 30, "the offline status")

    mosquitto.stop()  # the collector's session and subscriptions survive in persistence
    wait_for(lambda: not collector.snapshot()["mqtt_connected"], 30, "the disconnect")
    mosquitto.start()
    assert collector.wait_connected(30)
    wait_for(lambda: publisher.client.is_connected(), 30, "the publisher to reconnect")
    # Published after the collector resubscribed, so it reaches the collector after any
    # retained copy would have: once it is written, a second status point would be too.
    now = datetime.now(UTC)
    event = DeviceEvent(device="pump-v002", device_kind="pump", time=now, village="v002",
                        code="pump_fault")
    publisher.publish(topic("gw-v002", Channel.EVENTS),
                      EventMessage(gateway="gw-v002", seq=0, sent_at=now,
                                   events=[event]).model_dump_json())
    wait_for(lambda: influx.count("event", "severity") == 1, 30, "the sentinel event")
    assert influx.count("gateway_status", "online") == 1
