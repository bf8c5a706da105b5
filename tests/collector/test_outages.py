"""Nothing is lost, nothing doubles: broker, collector and InfluxDB outages mid-stream.

Each test publishes a paced stream of meter readings from several gateways, breaks one part
in the middle, brings it back, and counts the points in InfluxDB: every reading exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.service import Collector
from common.influx import InfluxClient
from common.localservices import InfluxDB, Mosquitto
from common.settings import InfluxSettings
from tests.collector.helpers import (
    CollectorProcess,
    Publisher,
    in_background,
    meter_messages,
    wait_for,
)

GATEWAYS, MESSAGES, READINGS = 3, 100, 5
TOTAL = GATEWAYS * MESSAGES * READINGS


def publish_with_outage(
    publisher: Publisher, outage: Callable[[], None], at_message: int = 100, pace_s: float = 0.03
) -> threading.Thread:
    """Publish the stream in the background, starting ``outage`` when message N goes out."""

    def pause(index: int) -> None:
        if index == at_message:
            in_background(outage)
        time.sleep(pace_s)

    return in_background(lambda: publisher.publish_all(
        meter_messages(GATEWAYS, MESSAGES, READINGS), pause=pause))


def test_broker_down_for_20_s_mid_stream_loses_nothing(
    collector: Collector, publisher: Publisher, mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    def outage() -> None:
        mosquitto.stop()
        time.sleep(20)
        mosquitto.start()

    publish_with_outage(publisher, outage).join()
    wait_for(lambda: influx.count("meter", "volume_m3") >= TOTAL, 120, f"{TOTAL} points")
    time.sleep(1)  # a late duplicate would overwrite, never add: prove the count is stable
    assert influx.count("meter", "volume_m3") == TOTAL


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_collector_killed_or_stopped_mid_stream_loses_nothing(
    signal_name: str, tmp_path: Path, publisher: Publisher, mosquitto: Mosquitto,
    influxdb: InfluxDB, influx_settings: InfluxSettings, influx: InfluxClient,
) -> None:
    process = CollectorProcess(tmp_path / "collector", mosquitto.port, influxdb.url,
                               influx_settings.database)
    process.start()
    exit_codes: list[int] = []
    try:
        def outage() -> None:
            if signal_name == "SIGKILL":
                process.kill()
            else:  # a clean stop while messages keep arriving: flush, ack, exit 0
                exit_codes.append(process.terminate())
            time.sleep(3)
            process.start()

        publish_with_outage(publisher, outage).join()
        wait_for(lambda: influx.count("meter", "volume_m3") >= TOTAL, 120, f"{TOTAL} points")
        time.sleep(1)
        assert influx.count("meter", "volume_m3") == TOTAL
    finally:
        process.stop()
    if signal_name == "SIGTERM":
        assert exit_codes == [0]
        assert "Traceback" not in (tmp_path / "collector.log").read_text()


def test_influxdb_down_for_60_s_mid_stream_spools_and_replays(
    collector: Collector, publisher: Publisher, influxdb: InfluxDB, influx: InfluxClient
) -> None:
    went_down = threading.Event()

    def outage() -> None:
        influxdb.stop()
        went_down.set()
        time.sleep(60)
        influxdb.start()

    stream = publish_with_outage(publisher, outage)
    went_down.wait(60)
    stream.join()
    publisher.wait_all_acked()
    wait_for(lambda: collector.snapshot()["spool_batches"] > 0, 30, "batches in the spool")
    wait_for(lambda: influx.ping() and influx.count("meter", "volume_m3") >= TOTAL, 150,
             f"{TOTAL} points after InfluxDB came back")
    assert influx.count("meter", "volume_m3") == TOTAL
    snapshot = collector.snapshot()
    assert snapshot["spooled_batches"] > 0 and snapshot["write_failures"] > 0
    wait_for(lambda: collector.snapshot()["spool_batches"] == 0, 30, "an empty spool")


def test_full_spool_and_a_kill_while_influxdb_is_down_lose_nothing(
    tmp_path: Path, publisher: Publisher, mosquitto: Mosquitto, influxdb: InfluxDB,
    influx_settings: InfluxSettings, influx: InfluxClient,
) -> None:
    """Spooled batches were acknowledged, so only the disk has them; the rest were held back
    unacknowledged when the spool filled, so only the broker's session has them."""
    process = CollectorProcess(tmp_path / "collector", mosquitto.port, influxdb.url,
                               influx_settings.database,
                               RURALWATER_COLLECTOR__SPOOL_MAX_BYTES="40000",
                               RURALWATER_COLLECTOR__BATCH_MAX_POINTS="100",
                               RURALWATER_COLLECTOR__RETRY_INITIAL_S="0.2")
    process.start()
    try:
        influxdb.stop()
        publisher.publish_all(meter_messages(GATEWAYS, MESSAGES, READINGS))
        wait_for(lambda: process.health().get("spool_full_waits", 0) > 0, 60, "a full spool")
        health = process.health()
        assert health["spool_batches"] > 0 and health["spool_bytes"] <= 40000
        process.kill()
        influxdb.start()
        process.start()
        wait_for(lambda: influx.count("meter", "volume_m3") >= TOTAL, 120, f"{TOTAL} points")
        time.sleep(1)
        assert influx.count("meter", "volume_m3") == TOTAL
        wait_for(lambda: process.health().get("spool_batches") == 0, 30, "an empty spool")
    finally:
        process.stop()
