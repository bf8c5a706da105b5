"""Bad input is dead-lettered with its reason; the collector keeps going; good data all lands."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.service import Collector, build_mqtt_client
from common.contract import Channel, topic
from common.influx import InfluxClient
from common.settings import CollectorSettings, InfluxSettings, MqttSettings
from tests.collector.helpers import Publisher, meter_messages, wait_for

GW = "gw-bad"
NOW = datetime.now(UTC).replace(microsecond=0)


def reading(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "kind": "meter", "device": "78330000000001", "time": NOW.isoformat(),
        "village": "v001", "dma": "dma-v001", "volume_m3": 10.5, "valve": "open",
    }
    return base | overrides


def message(seq: int, readings: list[dict[str, object]], **overrides: object) -> bytes:
    envelope = {"schema_version": 1, "gateway": GW, "seq": seq, "sent_at": NOW.isoformat(),
                "readings": readings} | overrides
    return json.dumps(envelope).encode()


# (payload, fragment of the dead-letter reason)
WHOLE_MESSAGE_REJECTS = [
    (os.urandom(300), "not JSON"),
    (message(1, [reading()])[:40], "not JSON"),
    (message(2, [reading()], schema_version=2), "schema_version"),
    (message(3, [reading()], sent_at="yesterday"), "sent_at"),
    (b"[1, 2, 3]", "not a JSON object"),
    (message(4, [reading()], gateway="gw-other"), "gateway mismatch"),
    (message(5, []), "readings"),
    (b"{" + b'"pad": "' + b"x" * 70_000 + b'"}', "oversized"),
]
READING_REJECTS = [
    (reading(device="78330000000010", volume_m3="lots"), "volume_m3"),
    (reading(device="78330000000011", volume_m3=float("nan")), "finite"),
    (reading(device="78330000000012", volume_m3=float("inf")), "finite"),
    (reading(device="78330000000013", time=(NOW + timedelta(days=30)).isoformat()), "ahead"),
    (reading(device="78330000000014", time="1999-01-01T00:00:00+00:00"), "old"),
    (reading(device="78330000000015", kind="toaster"), "does not match any of the expected"),
    (reading(device="78330000000016", valve=True), "valve"),
]


@pytest.fixture
def small_limit_collector(
    tmp_path: Path, mqtt_settings: MqttSettings, influx_settings: InfluxSettings,
    influx: InfluxClient,
) -> Iterator[Collector]:
    settings = CollectorSettings(client_id="collector-bad", data_dir=tmp_path / "c",
                                 health_port=0, batch_max_delay_s=0.2,
                                 max_message_bytes=65_536)
    service = Collector(mqtt_client=build_mqtt_client(mqtt_settings, settings),
                        mqtt_settings=mqtt_settings, influx=InfluxClient(influx_settings),
                        settings=settings)
    service.start()
    assert service.wait_connected(15)
    yield service
    service.stop()


def test_each_kind_of_bad_input_is_dead_lettered_and_good_readings_all_land(
    small_limit_collector: Collector, publisher: Publisher, influx: InfluxClient
) -> None:
    collector = small_limit_collector
    name = topic(GW, Channel.TELEMETRY)
    good_before = publisher.publish_all(meter_messages(2, 5, 4))
    for payload, _ in WHOLE_MESSAGE_REJECTS:
        publisher.publish(name, payload)
    # One message mixing two good readings with every bad one: the good ones must land.
    good_in_mixed = [reading(device="78330000000020"), reading(device="78330000000021")]
    publisher.publish(name, message(10, good_in_mixed + [r for r, _ in READING_REJECTS]))
    good_after = publisher.publish_all(meter_messages(2, 5, 4, start=NOW - timedelta(hours=1)))

    expected_points = good_before + len(good_in_mixed) + good_after
    wait_for(lambda: influx.count("meter", "volume_m3") >= expected_points, 60,
             f"{expected_points} good points")
    assert influx.count("meter", "volume_m3") == expected_points

    expected_dead = len(WHOLE_MESSAGE_REJECTS) + len(READING_REJECTS)
    wait_for(lambda: collector.dead_letters.count() >= expected_dead, 30, "dead letters")
    letters = collector.dead_letters.recent(100)
    reasons = [letter.reason for letter in letters]
    for _payload, fragment in WHOLE_MESSAGE_REJECTS + READING_REJECTS:
        assert any(fragment in reason for reason in reasons), (fragment, reasons)
    random_bytes = WHOLE_MESSAGE_REJECTS[0][0]
    assert any(letter.raw == random_bytes for letter in letters), "raw bytes are kept"
    snapshot = collector.snapshot()
    assert snapshot["invalid_messages"] == len(WHOLE_MESSAGE_REJECTS)
    assert snapshot["invalid_readings"] == len(READING_REJECTS)
    assert snapshot["mqtt_connected"] and snapshot["handler_errors"] == 0
