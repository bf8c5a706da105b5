"""Asset tables. Ids are the register's own strings (``v001``, ``dma-v001``...), so alerts,
telemetry tags and tickets all name an asset the same way."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, Enum, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base

ID_LENGTH = 64


def _enum_values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


class PipelineKind(StrEnum):
    MAIN = "main"
    BRANCH = "branch"


class DeviceKind(StrEnum):
    """Device kinds as InfluxDB measurements name them (common/schema.py)."""

    METER = "meter"
    PUMP = "pump"
    DMA_INFLOW = "dma_inflow"
    TANK = "tank"
    QUALITY = "quality"


class Township(Base):
    __tablename__ = "townships"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))


class Village(Base):
    __tablename__ = "villages"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    township_id: Mapped[str] = mapped_column(ForeignKey("townships.id"), index=True)
    population: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    monitored_households: Mapped[int] = mapped_column(Integer, default=0)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)


class Scheme(Base):
    """A supply scheme: the wells and tank serving a village (its id is the village's)."""

    __tablename__ = "schemes"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    village_id: Mapped[str] = mapped_column(ForeignKey("villages.id"), index=True)


class Well(Base):
    """A drilled well with its submersible pump (the pump drive shares the id)."""

    __tablename__ = "wells"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    scheme_id: Mapped[str] = mapped_column(ForeignKey("schemes.id"), index=True)
    rated_flow_m3h: Mapped[float] = mapped_column(Float)
    allowed_hours_per_day: Mapped[float] = mapped_column(Float)
    static_level_m: Mapped[float] = mapped_column(Float)
    intake_depth_m: Mapped[float] = mapped_column(Float)
    drawdown_m_per_m3h: Mapped[float] = mapped_column(Float, default=0.0)
    summer_decline_m: Mapped[float] = mapped_column(Float, default=0.0)
    delivery_head_m: Mapped[float] = mapped_column(Float, default=0.0)


class Tank(Base):
    __tablename__ = "tanks"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    scheme_id: Mapped[str] = mapped_column(ForeignKey("schemes.id"), index=True)
    capacity_m3: Mapped[float] = mapped_column(Float)
    height_m: Mapped[float] = mapped_column(Float)


class Dma(Base):
    """A district metered area with its bulk inflow meter."""

    __tablename__ = "dmas"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    village_id: Mapped[str] = mapped_column(ForeignKey("villages.id"), index=True)
    inflow_meter: Mapped[str] = mapped_column(String(ID_LENGTH))
    connections: Mapped[int] = mapped_column(Integer)
    avg_pressure_m: Mapped[float] = mapped_column(Float)


class Pipeline(Base):
    """A main or branch line of a DMA."""

    __tablename__ = "pipelines"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    dma_id: Mapped[str] = mapped_column(ForeignKey("dmas.id"), index=True)
    kind: Mapped[PipelineKind] = mapped_column(
        Enum(PipelineKind, native_enum=False, length=10, values_callable=_enum_values))
    length_km: Mapped[float] = mapped_column(Float)


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    village_id: Mapped[str] = mapped_column(ForeignKey("villages.id"), index=True)


class Household(Base):
    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    village_id: Mapped[str] = mapped_column(ForeignKey("villages.id"), index=True)
    dma_id: Mapped[str | None] = mapped_column(ForeignKey("dmas.id"), index=True)
    branch_id: Mapped[str | None] = mapped_column(ForeignKey("pipelines.id"))
    persons: Mapped[int] = mapped_column(Integer)
    #: On the social monitoring list: the household's water must never be cut off.
    monitored: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    contact_name: Mapped[str] = mapped_column(String(120), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")


class Device(Base):
    """A field device: household meter, pump drive, DMA inflow meter, tank level, analyser."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[DeviceKind] = mapped_column(
        Enum(DeviceKind, native_enum=False, length=16, values_callable=_enum_values),
        index=True)
    village_id: Mapped[str] = mapped_column(ForeignKey("villages.id"), index=True)
    dma_id: Mapped[str | None] = mapped_column(ForeignKey("dmas.id"))
    household_id: Mapped[str | None] = mapped_column(ForeignKey("households.id"), index=True)
    gateway_id: Mapped[str | None] = mapped_column(ForeignKey("gateways.id"))
    #: CJ/T 188 address (14 digits) for meters, empty for others.
    address: Mapped[str] = mapped_column(String(32), default="")

    household: Mapped[Household | None] = relationship(lazy="joined")

    @property
    def monitored(self) -> bool:
        """A meter of a household on the social monitoring list."""
        return self.household is not None and self.household.monitored
