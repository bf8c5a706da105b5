"""Who may use the API: people (users with a role) and machines (service tokens)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, UtcDateTime, utcnow


class Role(StrEnum):
    """A person's role; a crew member is linked to one crew and sees only its tickets."""

    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    CREW_MEMBER = "crew_member"
    VIEWER = "viewer"


class ServiceKind(StrEnum):
    """What a service token is for: the analysis layer posts alerts, gateways report."""

    ANALYSIS = "analysis"
    GATEWAY = "gateway"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    crew_id: Mapped[int | None] = mapped_column(
        ForeignKey("crews.id", ondelete="SET NULL"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ServiceToken(Base):
    """An API key. Only its SHA-256 is stored; ``prefix`` (first characters) finds the row."""

    __tablename__ = "service_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[ServiceKind] = mapped_column(
        Enum(ServiceKind, native_enum=False, length=20,
             values_callable=lambda e: [m.value for m in e])
    )
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
