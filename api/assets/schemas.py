"""Validated bodies of the asset endpoints: ``<Asset>Create`` (the full row, id included),
``<Asset>Update`` (every field optional but the id, which never changes) and
``<Asset>Read``. CSV import validates each row against the ``Create`` model."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from api.assets.models import DeviceKind, PipelineKind

AssetId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=120)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class _Asset(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: AssetId


class TownshipCreate(_Asset):
    name: Name


class VillageCreate(_Asset):
    name: Name
    township_id: AssetId
    population: Count
    households: Count
    monitored_households: Count = 0
    latitude: Latitude
    longitude: Longitude

    @model_validator(mode="after")
    def _monitored_within_households(self) -> VillageCreate:
        if self.monitored_households > self.households:
            raise ValueError("monitored_households exceeds households")
        return self


class SchemeCreate(_Asset):
    name: Name
    village_id: AssetId


class WellCreate(_Asset):
    scheme_id: AssetId
    rated_flow_m3h: Positive
    allowed_hours_per_day: Annotated[float, Field(gt=0, le=24)]
    static_level_m: NonNegative = Field(description="m below ground")
    intake_depth_m: Positive = Field(description="m below ground")
    drawdown_m_per_m3h: NonNegative = 0.0
    summer_decline_m: NonNegative = 0.0
    delivery_head_m: NonNegative = 0.0


class TankCreate(_Asset):
    scheme_id: AssetId
    capacity_m3: Positive
    height_m: Positive


class DmaCreate(_Asset):
    village_id: AssetId
    inflow_meter: AssetId
    connections: Count
    avg_pressure_m: NonNegative


class PipelineCreate(_Asset):
    dma_id: AssetId
    kind: PipelineKind
    length_km: Positive


class GatewayCreate(_Asset):
    village_id: AssetId


class HouseholdCreate(_Asset):
    village_id: AssetId
    dma_id: AssetId | None = None
    branch_id: AssetId | None = None
    persons: Annotated[int, Field(ge=1, le=50)]
    monitored: bool = False
    contact_name: Annotated[str, Field(max_length=120)] = ""
    contact_phone: Annotated[str, Field(max_length=32)] = ""


class DeviceCreate(_Asset):
    kind: DeviceKind
    village_id: AssetId
    dma_id: AssetId | None = None
    household_id: AssetId | None = None
    gateway_id: AssetId | None = None
    address: Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Fa-f]*$")] = ""

    @model_validator(mode="after")
    def _meter_needs_address(self) -> DeviceCreate:
        if self.kind is DeviceKind.METER and len(self.address) != 14:
            raise ValueError("a meter needs its 14-digit CJ/T 188 address")
        return self


class DeviceRead(DeviceCreate):
    monitored: bool = Field(description="the meter of a household on the monitoring list")


def partial_model(create: type[BaseModel]) -> type[BaseModel]:
    """``<X>Update``: every field of ``<X>Create`` but the id, all optional."""
    fields: dict[str, Any] = {}
    for name, field in create.model_fields.items():
        if name != "id":
            annotation: Any = field.annotation
            fields[name] = (annotation | None,
                            Field(default=None, description=field.description))
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        create.__name__.replace("Create", "Update"),
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
    return model
