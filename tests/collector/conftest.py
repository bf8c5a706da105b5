"""Collector fixtures: an in-process collector against the real broker and InfluxDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.service import Collector, build_mqtt_client
from common.influx import InfluxClient
from common.settings import CollectorSettings, InfluxSettings, MqttSettings
from tests.collector.helpers import Publisher


@pytest.fixture
def collector_settings(tmp_path: Path) -> CollectorSettings:
    return CollectorSettings(
        client_id="collector-test", data_dir=tmp_path / "collector", health_port=0,
        batch_max_delay_s=0.2, retry_initial_s=0.2, retry_max_s=2.0,
    )


@pytest.fixture
def collector(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, influx: InfluxClient,
    collector_settings: CollectorSettings,
) -> Iterator[Collector]:
    client = InfluxClient(influx_settings)
    service = Collector(
        mqtt_client=build_mqtt_client(mqtt_settings, collector_settings),
        mqtt_settings=mqtt_settings, influx=client, settings=collector_settings,
    )
    service.start()
    assert service.wait_connected(15), "collector did not connect"
    yield service
    service.stop()
    client.close()


@pytest.fixture
def publisher(mqtt_settings: MqttSettings) -> Iterator[Publisher]:
    pub = Publisher(mqtt_settings.port)
    yield pub
    pub.close()
