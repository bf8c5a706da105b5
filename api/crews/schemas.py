"""Request and response bodies of the crew endpoints."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from api.crews.models import Skill

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Zone = Annotated[str, Field(min_length=1, max_length=64)]


def _local_time(value: time | None) -> time | None:
    if value is not None and value.tzinfo is not None:
        raise ValueError("working hours are local county time: give them without a zone")
    return value


LocalTime = Annotated[time, AfterValidator(_local_time)]


class CrewBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80)]
    skills: Annotated[list[Skill], Field(min_length=1)]
    zones: list[Zone] = Field(default_factory=list,
                              description="township ids covered; empty: the whole county")
    home_latitude: Latitude
    home_longitude: Longitude
    work_start: LocalTime = time(8, 0)
    work_end: LocalTime = time(18, 0)

    @model_validator(mode="after")
    def _hours_in_order(self) -> CrewBase:
        if self.work_end <= self.work_start:
            raise ValueError("work_end must be after work_start")
        return self


class CrewCreate(CrewBase):
    pass


class CrewUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    skills: Annotated[list[Skill], Field(min_length=1)] | None = None
    zones: list[Zone] | None = None
    home_latitude: Latitude | None = None
    home_longitude: Longitude | None = None
    work_start: LocalTime | None = None
    work_end: LocalTime | None = None
    active: bool | None = None


class CrewMember(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    phone: str


class CrewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    skills: list[Skill]
    zones: list[str]
    home_latitude: float
    home_longitude: float
    work_start: time
    work_end: time
    active: bool
    reported_latitude: float | None = None
    reported_longitude: float | None = None
    reported_at: datetime | None = Field(default=None,
                                         description="when the crew last said where it is")
    members: list[CrewMember] = Field(default_factory=list)
