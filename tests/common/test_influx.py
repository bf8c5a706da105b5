"""Line protocol encoding and the InfluxDB v1 HTTP client, against a real influxd."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.contract import READING, DeviceEvent
from common.influx import InfluxClient, InfluxRejected, InfluxUnavailable, Point
from common.localservices import InfluxDB
from common.schema import FIELDS, event_point, reading_point
from common.settings import InfluxSettings

NOW = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)


def test_line_protocol_escapes_tags_and_strings() -> None:
    point = Point(
        measurement="event",
        tags={"device": "a b", "village": "x,y", "dma": ""},
        fields={"message": 'say "hi"\\', "active": True, "code": 3, "level": 1.0},
        time_ms=1000,
    )
    assert point.to_line() == (
        'event,device=a\\ b,village=x\\,y message="say \\"hi\\"\\\\",active=true,code=3i,'
        "level=1.0 1000"
    )


def test_line_protocol_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        Point("m", {}, {"v": float("nan")}, 1).to_line()


def test_meter_reading_becomes_a_tagged_point_with_clock_offset() -> None:
    reading = READING.validate_python(
        {"kind": "meter", "device": "78330011223344", "time": NOW.isoformat(),
         "village": "v001", "dma": "dma-v001", "volume_m3": 12, "valve": "closed",
         "meter_clock": (NOW + timedelta(seconds=90)).isoformat()}
    )
    point = reading_point(reading, "gw-v001")
    assert point.measurement == "meter"
    assert point.tags == {"device": "78330011223344", "village": "v001", "dma": "dma-v001",
                          "gateway": "gw-v001"}
    assert point.fields["volume_m3"] == 12.0 and isinstance(point.fields["volume_m3"], float)
    assert point.fields["clock_offset_s"] == 90.0
    assert set(point.fields) <= set(FIELDS["meter"])


def test_points_written_are_queryable_and_replays_overwrite(influx: InfluxClient) -> None:
    reading = READING.validate_python(
        {"kind": "pump", "device": "pump-v001-1", "time": NOW.isoformat(), "village": "v001",
         "running": True, "frequency_hz": 50, "current_a": 12.5, "flow_m3h": 20,
         "outlet_pressure_mpa": 0.35, "well_level_m": 41.2, "fault_code": 0}
    )
    event = DeviceEvent(device="pump-v001-1", device_kind="pump", time=NOW, village="v001",
                        code="dry_run", severity="critical", message="current and flow dropped")
    points = [reading_point(reading, "gw-v001"), event_point(event, "gw-v001")]
    influx.write_points(points)
    influx.write_points(points)  # a replay: same series and time
    assert influx.count("pump", "flow_m3h") == 1
    assert influx.count("event", "severity", "code = 'dry_run'") == 1
    rows = influx.query('SELECT "well_level_m", "gateway" FROM "pump"')[0].records()
    assert rows[0]["well_level_m"] == 41.2 and rows[0]["gateway"] == "gw-v001"


def test_bad_influxql_is_rejected_not_retried(influx: InfluxClient) -> None:
    with pytest.raises(InfluxRejected):
        influx.query("SELEKT nonsense")


def test_stopped_server_is_reported_unavailable(influxdb: InfluxDB) -> None:
    client = InfluxClient(InfluxSettings(url=influxdb.url, timeout_s=1.0))
    assert client.ping()
    influxdb.stop()
    assert not client.ping()
    with pytest.raises(InfluxUnavailable):
        client.write_lines(["m v=1.0 1"])


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "meter", "device": "78330011223344", "village": "v.1", "dma": "dma:1",
         "volume_m3": 3, "valve": "fault", "battery_low": True, "status": 5,
         "meter_clock": "2026-07-01T02:59:00+00:00"},
        {"kind": "pump", "device": "p1", "village": "v1", "running": False, "frequency_hz": 0,
         "current_a": 0, "flow_m3h": 0, "outlet_pressure_mpa": 0, "well_level_m": -1.5,
         "run_hours": 12.25, "fault_code": 7},
        {"kind": "dma_inflow", "device": "i1", "village": "v1", "dma": "d1", "flow_m3h": 1.5,
         "volume_m3": 1e6},
        {"kind": "tank", "device": "t1", "village": "v1", "level_m": 2},
        {"kind": "quality", "device": "q1", "village": "v1", "ph": 7.1, "temperature_c": -3},
    ],
)
def test_fast_reading_line_equals_the_point_line(raw: dict) -> None:
    from common.schema import reading_line

    reading = READING.validate_python(raw | {"time": NOW.isoformat()})
    assert reading_line(reading, "gw-1") == reading_point(reading, "gw-1").to_line()
