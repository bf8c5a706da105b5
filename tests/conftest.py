"""Fixtures that start real services: Mosquitto and InfluxDB on free ports, temporary data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.influx import InfluxClient
from common.localservices import InfluxDB, Mosquitto
from common.settings import InfluxSettings, MqttSettings


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh broker with persistence; ``mosquitto.stop()`` / ``.start()`` for outages."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[InfluxDB]:
    """A fresh InfluxDB 1.x; ``influxdb.stop()`` / ``.start()`` for outages."""
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mqtt_settings(mosquitto: Mosquitto) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=mosquitto.port)


@pytest.fixture
def influx_settings(influxdb: InfluxDB) -> InfluxSettings:
    return InfluxSettings(url=influxdb.url, database="ruralwater_test", timeout_s=5.0)


@pytest.fixture
def influx(influx_settings: InfluxSettings) -> Iterator[InfluxClient]:
    client = InfluxClient(influx_settings)
    client.ensure_database()
    yield client
    client.close()
