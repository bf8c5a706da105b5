"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from api.auth.models import Role, ServiceKind

Username = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[SecretStr, Field(min_length=8, max_length=200)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    role: Role
    full_name: Annotated[str, Field(max_length=120)] = ""
    phone: Annotated[str, Field(max_length=32)] = ""
    crew_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password | None = None
    role: Role | None = None
    full_name: Annotated[str, Field(max_length=120)] | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None
    crew_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    active: bool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    phone: str
    role: Role
    crew_id: int | None
    active: bool
    created_at: datetime


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")


class ServiceTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Username
    kind: ServiceKind


class ServiceTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: ServiceKind
    prefix: str
    active: bool
    created_at: datetime
    last_used_at: datetime | None


class ServiceTokenIssued(ServiceTokenRead):
    token: str = Field(description="the API key; shown once, store it now")
