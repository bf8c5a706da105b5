"""A repair crew: who is in it, what it can fix, where it starts and when it works."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Float, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, UtcDateTime, utcnow


class Skill(StrEnum):
    PIPE = "pipe"
    PUMP_ELECTRICAL = "pump_electrical"
    METER = "meter"
    WATER_QUALITY = "water_quality"


class Crew(Base):
    __tablename__ = "crews"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    #: Skill values (``Skill``), a JSON list so SQLite and PostgreSQL store it alike.
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Township ids this crew covers (empty: the whole county).
    zones: Mapped[list[str]] = mapped_column(JSON, default=list)
    home_latitude: Mapped[float] = mapped_column(Float)
    home_longitude: Mapped[float] = mapped_column(Float)
    #: Local working hours (county time), e.g. 08:00-18:00.
    work_start: Mapped[time] = mapped_column(Time, default=time(8, 0))
    work_end: Mapped[time] = mapped_column(Time, default=time(18, 0))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: Last reported position (WGS84) and when: the planner starts the crew's day there.
    reported_latitude: Mapped[float | None] = mapped_column(Float)
    reported_longitude: Mapped[float | None] = mapped_column(Float)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
