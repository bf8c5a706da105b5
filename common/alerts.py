"""The alert contract: what the analysis layer raises and the ticket service consumes.

One alert per problem, named by a stable ``key`` (``<kind>:<subject>``, e.g.
``night_flow:dma-v003`` or ``valve_closed:v002-h0017``). The analysis sends the whole alert
every time its evidence changes (``PUT /api/v1/alerts/{key}`` on the API, idempotent) and
once more with ``status = resolved`` when the condition clears. The ticket service keys its
tickets on the alert key, so new evidence updates the same ticket instead of opening another.
docs/alerts.md describes the fields for people; this module is the reference.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION: Final = 1


class AlertKind(StrEnum):
    # leaks (per DMA, or per household for customer-side leaks)
    NIGHT_FLOW = "night_flow"  # minimum night flow 02:00-04:00 above its rolling baseline
    BURST = "burst"  # a step change in inflow or night flow
    WATER_BALANCE = "water_balance"  # non-revenue water above the configured grade
    CUSTOMER_LEAK = "customer_leak"  # a household meter that never goes idle at night
    # supply (per scheme: a village's wells and tank)
    SHORTAGE = "shortage"  # demand will outrun the source; carries the plan level
    # water quality (per analyser site)
    QUALITY_LIMIT = "quality_limit"  # a GB 5749 limit breached
    QUALITY_EVENT = "quality_event"  # a statistical event below the limits
    SENSOR_FAULT = "sensor_fault"  # flatline, out of range or drift: the sensor, not the water
    # devices
    DEVICE_SILENT = "device_silent"  # a meter, drive or analyser missed N reporting intervals
    GATEWAY_SILENT = "gateway_silent"  # a gateway offline (Last Will) or silent
    LOW_BATTERY = "low_battery"
    VALVE_CLOSED = "valve_closed"  # a prepaid meter's valve closed at zero balance
    TAMPER = "tamper"
    REVERSE_FLOW = "reverse_flow"  # a cumulative volume running backwards
    PUMP_DRY_RUN = "pump_dry_run"  # current and flow drop together while running
    PUMP_OVERCURRENT = "pump_overcurrent"
    PUMP_CYCLING = "pump_cycling"  # too many starts per hour
    PUMP_FAULT = "pump_fault"  # the drive reports a fault code


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"  # people without water, or unsafe water


class AlertStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


PlanLevel = Literal["IV", "III", "II", "I"]
Evidence = dict[str, float | int | str | bool | None]


class Place(BaseModel):
    """Where the problem is, as precisely as the data can tell (ids from the register)."""

    model_config = ConfigDict(extra="forbid")

    township: str | None = None
    village: str | None = None
    # A village's supply scheme (its wells and tank) carries the village id.
    scheme: str | None = None
    dma: str | None = None
    branch: str | None = None
    device: str | None = None
    household: str | None = None
    monitored: bool = Field(default=False,
                            description="a household on the social monitoring list")


class SeriesWindow(BaseModel):
    """The stretch of stored telemetry behind the evidence, to plot or re-query."""

    model_config = ConfigDict(extra="forbid")

    measurement: str
    fields: list[str]
    tags: dict[str, str] = Field(default_factory=dict)
    start: AwareDatetime
    end: AwareDatetime


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    key: Annotated[str, Field(min_length=3, max_length=200, pattern=r"^[a-z_]+:[^\s]+$")]
    kind: AlertKind
    severity: Severity
    status: AlertStatus = AlertStatus.OPEN
    title: Annotated[str, Field(max_length=300)]
    place: Place
    started_at: AwareDatetime = Field(description="when the condition began, as the data shows")
    detected_at: AwareDatetime = Field(description="when the analysis first raised it")
    updated_at: AwareDatetime = Field(description="when its evidence last changed")
    resolved_at: AwareDatetime | None = None
    evidence: Evidence = Field(
        default_factory=dict,
        description="numbers behind the finding; names end in their unit (night_flow_m3h)")
    window: SeriesWindow | None = None
    plan_level: PlanLevel | None = Field(
        default=None, description="shortage alerts: the emergency plan level the data calls for")


def alert_key(kind: AlertKind, subject: str) -> str:
    """The stable key of the one alert about ``subject`` (a DMA, device, scheme...)."""
    return f"{kind.value}:{subject}"
