"""Activations of an emergency plan, their tasks and the duty officer's log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, UtcDateTime


class EmergencyActivation(Base):
    """One plan in force for one supply scheme, from the first alert until a person closes it.

    ``status`` is ``active``, ``standing_down`` or ``closed`` (``machine.ActivationStatus``);
    ``level`` is the level in force (IV..I), ``peak_level`` the highest it reached.
    """

    __tablename__ = "emergency_activations"
    __table_args__ = (Index("ix_emergency_activations_alert_status", "alert_key", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan: Mapped[str] = mapped_column(String(64))
    alert_key: Mapped[str] = mapped_column(String(200))
    #: the scheme (village id) or other subject the alert is about
    subject: Mapped[str] = mapped_column(String(200), index=True)
    village: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(3))
    peak_level: Mapped[str] = mapped_column(String(3))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_alert_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: the evidence of the latest alert (numbers for the duty officer)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(100))
    close_reason: Mapped[str | None] = mapped_column(Text)

    tasks: Mapped[list[EmergencyTask]] = relationship(
        back_populates="activation", order_by="EmergencyTask.id", cascade="all, delete-orphan")
    log: Mapped[list[EmergencyLogEntry]] = relationship(
        back_populates="activation", order_by="EmergencyLogEntry.id",
        cascade="all, delete-orphan")


class EmergencyTask(Base):
    """One plan action to carry out: who (role, then a person), by when, how far along."""

    __tablename__ = "emergency_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(
        ForeignKey("emergency_activations.id", ondelete="CASCADE"), index=True)
    action_code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    #: the plan level that requires the action
    level: Mapped[str] = mapped_column(String(3))
    assignee_role: Mapped[str] = mapped_column(String(40))
    #: the person who took it on (``user:<name>``), once someone has
    assignee: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text, default="")

    activation: Mapped[EmergencyActivation] = relationship(back_populates="tasks")


class EmergencyLogEntry(Base):
    """A line in the duty officer's log: a level change, a task created or stood down..."""

    __tablename__ = "emergency_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(
        ForeignKey("emergency_activations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: ``activated``, ``escalated``, ``deescalated``, ``standing_down``, ``resumed``,
    #: ``closed``, ``task_created``, ``task_stood_down``, ``task_updated``
    kind: Mapped[str] = mapped_column(String(32))
    from_level: Mapped[str | None] = mapped_column(String(3))
    to_level: Mapped[str | None] = mapped_column(String(3))
    #: ``system`` for changes the data made, else ``user:<name>``
    actor: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)

    activation: Mapped[EmergencyActivation] = relationship(back_populates="log")
