"""The InfluxDB schema: one measurement per device kind, documented in ``docs/influxdb.md``.

Tags (indexed, low cardinality per series): ``device``, ``village``, ``dma`` (when the device
sits in one), ``gateway``; events add ``code`` and ``device_kind``. Everything measured is a
field. Timestamps are the device's, in milliseconds, so a replayed duplicate lands on the same
series and time and overwrites itself instead of doubling.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from common.contract import DeviceEvent, MeterReading, Reading, StatusMessage
from common.influx import Point, escape_key, field_value, series_key

PRECISION: Final = "ms"
EVENT_MEASUREMENT: Final = "event"
STATUS_MEASUREMENT: Final = "gateway_status"

#: measurement -> field -> line-protocol type; the reference for queries and dashboards.
FIELDS: Final[dict[str, dict[str, str]]] = {
    "meter": {
        "volume_m3": "float", "balance_yuan": "float", "valve": "string",
        "battery_low": "boolean", "tamper": "boolean", "status": "integer",
        "clock_offset_s": "float",
    },
    "pump": {
        "running": "boolean", "frequency_hz": "float", "current_a": "float", "flow_m3h": "float",
        "outlet_pressure_mpa": "float", "well_level_m": "float", "run_hours": "float",
        "fault_code": "integer",
    },
    "dma_inflow": {"flow_m3h": "float", "volume_m3": "float"},
    "tank": {"level_m": "float", "volume_m3": "float"},
    "quality": {
        "turbidity_ntu": "float", "free_chlorine_mgl": "float", "ph": "float",
        "conductivity_uscm": "float", "temperature_c": "float",
    },
    EVENT_MEASUREMENT: {"severity": "string", "active": "boolean", "message": "string"},
    STATUS_MEASUREMENT: {"online": "boolean"},
}
#: What the analysis layer writes back (daily KPIs, supply outlook, alert states), for the
#: boards. Measurement -> field -> type, as FIELDS; tags are named in docs/influxdb.md.
ANALYSIS_FIELDS: Final[dict[str, dict[str, str]]] = {
    # per DMA and local day; tags dma, village
    "dma_kpi": {
        "inflow_m3": "float", "consumption_m3": "float", "nrw_m3": "float", "nrw_pct": "float",
        "night_flow_m3h": "float", "night_baseline_m3h": "float",
        "litres_per_connection_day": "float", "ili": "float",
    },
    # per scheme (village) and evaluation; tags village, township
    "supply_outlook": {
        "demand_m3d": "float", "capacity_m3d": "float", "litres_per_person_day": "float",
        "days_to_shortfall": "float", "guarantee_rate_pct": "float",
        "well_margin_m": "float", "plan_level": "integer",
    },
    # one point per alert change, one series per alert; tags kind, alert_key, village, dma,
    # device
    "alert": {"key": "string", "open": "boolean", "title": "string", "severity": "string"},
}
TAGS: Final = ("device", "village", "dma", "gateway")
#: per reading kind, the contract fields stored as they are (derived ones are computed)
_STORED: Final = {
    kind: [(name, kind_of) for name, kind_of in fields.items() if name != "clock_offset_s"]
    for kind, fields in FIELDS.items()
}


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_millis(moment: datetime) -> int:
    """Exact integer milliseconds (a float multiply can lose one)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _tags(device: str, village: str, dma: str | None, gateway: str) -> dict[str, str]:
    tags = {"device": device, "village": village, "gateway": gateway}
    if dma:
        tags["dma"] = dma
    return tags


def _reading_fields(reading: Reading) -> dict[str, float | int | bool | str]:
    values = reading.__dict__
    fields: dict[str, float | int | bool | str] = {}
    for name, kind in _STORED[reading.kind]:
        value = values[name]
        if value is not None:
            fields[name] = float(value) if kind == "float" else value
    if isinstance(reading, MeterReading) and reading.meter_clock is not None:
        fields["clock_offset_s"] = (reading.meter_clock - reading.time).total_seconds()
    return fields


def reading_point(reading: Reading, gateway: str) -> Point:
    """The point one validated reading becomes."""
    return Point(
        measurement=reading.kind,
        tags=_tags(reading.device, reading.village, reading.dma, gateway),
        fields=_reading_fields(reading),
        time_ms=to_millis(reading.time),
    )


@lru_cache(maxsize=262_144)
def _reading_series(kind: str, device: str, village: str, dma: str | None, gateway: str) -> str:
    return series_key(kind, _tags(device, village, dma, gateway))


_FLOAT, _INTEGER, _BOOLEAN = "float", "integer", "boolean"
#: per reading kind, (field, "field=", type) in FIELDS order, for the hot path below
_LINE_FIELDS: Final = {
    kind: [(name, f"{escape_key(name)}=", kind_of) for name, kind_of in stored]
    for kind, stored in _STORED.items()
}


def reading_line(reading: Reading, gateway: str) -> str:
    """``reading_point(reading, gateway).to_line()``, faster: the collector's hot path.

    A device's series key repeats with every reading, so it is built once and cached, and
    the field types are switched on inline: the contract already refused NaN and infinity.
    """
    series = _reading_series(reading.kind, reading.device, reading.village, reading.dma,
                             gateway)
    values = reading.__dict__
    parts = []
    for name, prefix, kind_of in _LINE_FIELDS[reading.kind]:
        value = values[name]
        if value is None:
            continue
        if kind_of == _FLOAT:
            parts.append(f"{prefix}{float(value)!r}")
        elif kind_of == _INTEGER:
            parts.append(f"{prefix}{value}i")
        elif kind_of == _BOOLEAN:
            parts.append(prefix + ("true" if value else "false"))
        else:
            parts.append(prefix + field_value(value))
    if isinstance(reading, MeterReading) and reading.meter_clock is not None:
        offset = (reading.meter_clock - reading.time).total_seconds()
        parts.append(f"clock_offset_s={offset!r}")
    return f"{series} {','.join(parts)} {to_millis(reading.time)}"


def event_point(event: DeviceEvent, gateway: str) -> Point:
    tags = _tags(event.device, event.village, event.dma, gateway)
    tags["code"] = event.code
    tags["device_kind"] = event.device_kind
    return Point(
        measurement=EVENT_MEASUREMENT,
        tags=tags,
        fields={"severity": event.severity, "active": event.active, "message": event.message},
        time_ms=to_millis(event.time),
    )


def status_point(status: StatusMessage, received_ms: int) -> Point:
    """A gateway going online or offline; the Last Will has no ``at``, so receipt time is used."""
    return Point(
        measurement=STATUS_MEASUREMENT,
        tags={"gateway": status.gateway},
        fields={"online": status.state == "online"},
        time_ms=to_millis(status.at) if status.at is not None else received_ms,
    )
