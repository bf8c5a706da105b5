"""What InfluxDB refuses: a bad point is dead-lettered alone; a missing database is created."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.service import Collector, build_mqtt_client
from common.contract import (
    Channel,
    MeterReading,
    Reading,
    TankReading,
    TelemetryMessage,
    topic,
)
from common.influx import InfluxClient
from common.localservices import InfluxDB
from common.schema import to_millis
from common.settings import CollectorSettings, InfluxSettings, MqttSettings
from tests.collector.helpers import Publisher, meter_messages, wait_for


def test_a_point_influxdb_refuses_is_dead_lettered_with_its_reason_and_the_rest_written(
    collector: Collector, publisher: Publisher, influx: InfluxClient
) -> None:
    taken = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    # Someone wrote level_m as a string into this shard: InfluxDB now refuses float level_m.
    influx.write_lines([f'tank,device=seed level_m="broken" {to_millis(taken)}'])
    readings: list[Reading] = [
        MeterReading(device=f"m{i}", time=taken, village="v001", volume_m3=1.0 + i,
                     valve="open")
        for i in range(7)
    ]
    readings.append(TankReading(device="tank-v001", time=taken, village="v001", level_m=2.5))
    mixed = TelemetryMessage(gateway="gw-mix", seq=0, sent_at=taken, readings=readings)
    publisher.publish(topic("gw-mix", Channel.TELEMETRY), mixed.model_dump_json())
    sent = 7 + publisher.publish_all(meter_messages(gateways=2, messages_per_gateway=5,
                                                    readings_per_message=3))

    wait_for(lambda: influx.count("meter", "volume_m3") >= sent, 60, f"{sent} meter points")
    wait_for(lambda: collector.snapshot()["rejected_points"] == 1, 30, "the refused point")
    assert influx.count("meter", "volume_m3") == sent
    assert influx.count("tank", "level_m") == 1  # only the seed
    refused = [d for d in collector.dead_letters.recent(10) if d.topic == "influxdb"]
    assert len(refused) == 1
    assert "field type conflict" in refused[0].reason
    assert refused[0].raw.startswith(b"tank,device=tank-v001")
    assert collector.snapshot()["influx_up"]


@pytest.fixture
def late_database_settings(influxdb: InfluxDB) -> InfluxSettings:
    return InfluxSettings(url=influxdb.url, database="created_late", timeout_s=3.0)


@pytest.fixture
def collector_started_without_influxdb(
    tmp_path: Path, influxdb: InfluxDB, mqtt_settings: MqttSettings,
    late_database_settings: InfluxSettings,
) -> Iterator[Collector]:
    influxdb.stop()
    settings = CollectorSettings(client_id="collector-late", data_dir=tmp_path / "late",
                                 health_port=0, batch_max_delay_s=0.2, retry_initial_s=0.2,
                                 retry_max_s=1.0)
    client = InfluxClient(late_database_settings)
    service = Collector(mqtt_client=build_mqtt_client(mqtt_settings, settings),
                        mqtt_settings=mqtt_settings, influx=client, settings=settings)
    service.start()
    assert service.wait_connected(15)
    yield service
    service.stop()
    client.close()


def test_database_missing_because_influxdb_was_down_at_start_is_created_and_nothing_lost(
    collector_started_without_influxdb: Collector, influxdb: InfluxDB, publisher: Publisher,
    late_database_settings: InfluxSettings,
) -> None:
    collector = collector_started_without_influxdb
    sent = publisher.publish_all(meter_messages(gateways=2, messages_per_gateway=10,
                                                readings_per_message=4))
    wait_for(lambda: collector.snapshot()["spool_batches"] > 0, 30, "batches in the spool")
    influxdb.start()  # a fresh server: the database does not exist yet
    with InfluxClient(late_database_settings) as influx:
        wait_for(lambda: "created_late" in str(influx.query("SHOW DATABASES")), 60,
                 "the collector to create its database")
        wait_for(lambda: influx.count("meter", "volume_m3") >= sent, 60, f"{sent} points")
        assert influx.count("meter", "volume_m3") == sent
    snapshot = collector.snapshot()
    assert snapshot["rejected_points"] == 0 and snapshot["dead_letters"] == 0
