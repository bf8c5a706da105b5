"""The wire contract between gateways (and the simulator) and the collector.

Documented in ``docs/contract.md``; this module is its enforcement. Topics put the gateway id
at a fixed level so a broker ACL can pin each gateway to its own prefix::

    ruralwater/v1/<gateway>/telemetry   gateway -> collector   QoS 1  TelemetryMessage
    ruralwater/v1/<gateway>/events      gateway -> collector   QoS 1  EventMessage
    ruralwater/v1/<gateway>/status      gateway -> anyone      QoS 1, retained, Last Will
    ruralwater/v1/<gateway>/commands    bureau  -> gateway     QoS 1  CommandMessage
    ruralwater/v1/<gateway>/results     gateway -> bureau      QoS 1  CommandResult

Every telemetry and event message carries the schema version, the gateway id and a
per-gateway sequence number (one counter for both topics) so consumers can spot gaps and
duplicates; every reading carries the time it was taken at the device or gateway.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

SCHEMA_VERSION: Final = 1
TOPIC_ROOT = "ruralwater/v1"

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
]
# Gateway ids double as MQTT usernames and topic levels: no wildcards, slashes or dots.
GatewayId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class ContractError(ValueError):
    """A topic or payload that does not follow the wire contract."""


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENTS = "events"
    STATUS = "status"
    COMMANDS = "commands"
    RESULTS = "results"


def topic(gateway_id: str, channel: Channel) -> str:
    """The topic a gateway uses for one channel."""
    return f"{TOPIC_ROOT}/{gateway_id}/{channel.value}"


def subscription(channel: Channel, share_group: str = "") -> str:
    """The filter a consumer subscribes to for one channel of every gateway."""
    base = f"{TOPIC_ROOT}/+/{channel.value}"
    return f"$share/{share_group}/{base}" if share_group else base


def parse_topic(name: str) -> tuple[str, Channel]:
    """Split a topic into (gateway id, channel); raise ContractError if it is not ours."""
    parts = name.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ContractError(f"topic {name!r} is not under {TOPIC_ROOT}/<gateway>/<channel>")
    try:
        channel = Channel(parts[3])
    except ValueError as exc:
        raise ContractError(f"unknown channel {parts[3]!r} in topic {name!r}") from exc
    return parts[2], channel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- readings


class _Reading(_Strict):
    device: Identifier
    time: AwareDatetime = Field(description="when the device took the reading (UTC or offset)")
    village: Identifier
    dma: Identifier | None = Field(default=None, description="district metered area, if any")


class MeterReading(_Reading):
    """A household IC-card prepaid meter (CJ/T 188 DI 901F and 8105)."""

    kind: Literal["meter"] = "meter"
    volume_m3: NonNegative = Field(description="cumulative volume, m3")
    balance_yuan: Finite | None = Field(default=None, description="remaining prepaid balance")
    valve: Literal["open", "closed", "fault"]
    battery_low: bool = False
    tamper: bool = False
    status: int = Field(default=0, ge=0, le=0xFFFF, description="raw ST1 | ST2 << 8")
    meter_clock: AwareDatetime | None = None


class PumpReading(_Reading):
    """A well pump drive (Modbus)."""

    kind: Literal["pump"] = "pump"
    running: bool
    frequency_hz: NonNegative
    current_a: NonNegative
    flow_m3h: NonNegative
    outlet_pressure_mpa: NonNegative
    well_level_m: Finite = Field(description="depth to water below ground, m")
    run_hours: NonNegative | None = None
    fault_code: int = Field(default=0, ge=0, le=0xFFFF)


class InflowReading(_Reading):
    """The bulk meter at a DMA inlet."""

    kind: Literal["dma_inflow"] = "dma_inflow"
    flow_m3h: NonNegative
    volume_m3: NonNegative = Field(description="cumulative volume, m3")


class TankReading(_Reading):
    """A storage tank level sensor."""

    kind: Literal["tank"] = "tank"
    level_m: NonNegative
    volume_m3: NonNegative | None = None


class QualityReading(_Reading):
    """An online water-quality analyser; absent parameters are not measured by that model."""

    kind: Literal["quality"] = "quality"
    turbidity_ntu: NonNegative | None = None
    free_chlorine_mgl: NonNegative | None = None
    ph: Annotated[float, Field(ge=0.0, le=14.0, allow_inf_nan=False)] | None = None
    conductivity_uscm: NonNegative | None = None
    temperature_c: Annotated[float, Field(ge=-40.0, le=80.0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _measures_something(self) -> QualityReading:
        if all(
            getattr(self, name) is None
            for name in ("turbidity_ntu", "free_chlorine_mgl", "ph", "conductivity_uscm",
                         "temperature_c")
        ):
            raise ValueError("a quality reading needs at least one parameter")
        return self


Reading = Annotated[
    MeterReading | PumpReading | InflowReading | TankReading | QualityReading,
    Field(discriminator="kind"),
]
READING = TypeAdapter(Reading)
DEVICE_KINDS = ("meter", "pump", "dma_inflow", "tank", "quality")


# --------------------------------------------------------------------------- messages


class _Envelope(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    gateway: GatewayId
    seq: int = Field(ge=0, description="per-gateway, +1 per telemetry or event message")
    sent_at: AwareDatetime


class TelemetryMessage(_Envelope):
    """What a gateway publishes on ``.../telemetry``: one or many readings."""

    readings: list[Reading] = Field(min_length=1)


class TelemetryEnvelope(_Envelope):
    """The consumer's view: the envelope is checked whole, each reading on its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    readings: list[dict[str, Any]] = Field(min_length=1)


class DeviceEvent(_Strict):
    device: Identifier
    device_kind: Literal["meter", "pump", "dma_inflow", "tank", "quality", "gateway"]
    time: AwareDatetime
    village: Identifier
    dma: Identifier | None = None
    code: Identifier = Field(description="e.g. low_battery, tamper, valve_closed, pump_fault")
    severity: Literal["info", "warning", "critical"] = "warning"
    active: bool = Field(default=True, description="false when the condition clears")
    message: Annotated[str, StringConstraints(max_length=500)] = ""


class EventMessage(_Envelope):
    """What a gateway publishes on ``.../events``."""

    events: list[DeviceEvent] = Field(min_length=1)


class DeviceInfo(_Strict):
    device: Identifier
    kind: Literal["meter", "pump", "dma_inflow", "tank", "quality"]
    village: Identifier
    dma: Identifier | None = None
    model: str = ""


class StatusMessage(_Strict):
    """Retained on ``.../status``; the Last Will carries state=offline."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway: GatewayId
    state: Literal["online", "offline"]
    at: AwareDatetime | None = None
    inventory: list[DeviceInfo] = Field(default_factory=list)


class CommandMessage(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    command_id: Identifier
    gateway: GatewayId
    action: Literal["poll_now", "valve_open", "valve_close"]
    device: Identifier | None = None
    issued_at: AwareDatetime


class CommandResult(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    command_id: Identifier
    gateway: GatewayId
    ok: bool
    detail: Annotated[str, StringConstraints(max_length=500)] = ""
    done_at: AwareDatetime


def check_reading_time(
    taken_at: datetime, now: datetime, *, max_future: timedelta, max_age: timedelta
) -> None:
    """Refuse a timestamp from a device whose clock is clearly wrong."""
    if taken_at > now + max_future:
        raise ContractError(f"time {taken_at.isoformat()} is more than {max_future} ahead")
    if taken_at < now - max_age:
        raise ContractError(f"time {taken_at.isoformat()} is more than {max_age} old")


def finite_or_none(value: float | None) -> float | None:
    """NaN from a sensor becomes 'not measured' at the producer, never on the wire."""
    return None if value is None or not math.isfinite(value) else value
