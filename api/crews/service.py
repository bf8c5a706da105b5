"""Crew service functions; members are users with role crew_member linked to the crew."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.assets.models import Township
from api.audit import service as audit
from api.auth.models import User
from api.auth.security import Principal
from api.crews.models import Crew
from api.crews.schemas import CrewCreate, CrewMember, CrewRead, CrewUpdate
from api.errors import Conflict, Invalid, NotFound


def get(*, db_session: Session, crew_id: int) -> Crew:
    crew = db_session.get(Crew, crew_id)
    if crew is None:
        raise NotFound(f"no crew {crew_id}")
    return crew


def get_all(*, db_session: Session, active_only: bool = False) -> Sequence[Crew]:
    query = select(Crew).order_by(Crew.name)
    if active_only:
        query = query.where(Crew.active.is_(True))
    return db_session.scalars(query).all()


def members(*, db_session: Session, crew_id: int) -> Sequence[User]:
    return db_session.scalars(
        select(User).where(User.crew_id == crew_id, User.active.is_(True))
        .order_by(User.username)).all()


def to_read(db_session: Session, crew: Crew) -> CrewRead:
    read = CrewRead.model_validate(crew)
    read.members = [CrewMember.model_validate(user)
                    for user in members(db_session=db_session, crew_id=crew.id)]
    return read


def _check_zones(db_session: Session, zones: Sequence[str]) -> None:
    unknown = [zone for zone in zones if db_session.get(Township, zone) is None]
    if unknown:
        raise Invalid(f"unknown townships in zones: {', '.join(unknown)}")


def _commit_unique(db_session: Session, name: str) -> None:
    try:
        db_session.commit()
    except IntegrityError as exc:
        db_session.rollback()
        raise Conflict(f"a crew named {name!r} exists") from exc


def create(*, db_session: Session, crew_in: CrewCreate, actor: Principal) -> Crew:
    _check_zones(db_session, crew_in.zones)
    crew = Crew(**crew_in.model_dump(mode="json", exclude={"work_start", "work_end"}),
                work_start=crew_in.work_start, work_end=crew_in.work_end, active=True)
    db_session.add(crew)
    try:
        db_session.flush()
    except IntegrityError as exc:
        db_session.rollback()
        raise Conflict(f"a crew named {crew_in.name!r} exists") from exc
    audit.record(db_session=db_session, actor=actor, action="crew.create", entity_type="crew",
                 entity_id=crew.id, changes=crew_in.model_dump(mode="json"))
    _commit_unique(db_session, crew_in.name)
    return crew


def update(*, db_session: Session, crew: Crew, crew_in: CrewUpdate, actor: Principal) -> Crew:
    changes: dict[str, Any] = crew_in.model_dump(exclude_unset=True)
    if crew_in.zones is not None:
        _check_zones(db_session, crew_in.zones)
    if "skills" in changes and crew_in.skills is not None:
        changes["skills"] = [skill.value for skill in crew_in.skills]
    start = changes.get("work_start", crew.work_start)
    end = changes.get("work_end", crew.work_end)
    if start is None or end is None or end <= start:
        raise Invalid("work_end must be after work_start")
    for name, value in changes.items():
        if value is None and name in {"name", "skills", "zones", "home_latitude",
                                      "home_longitude", "active"}:
            raise Invalid(f"{name} cannot be null")
        setattr(crew, name, value)
    audit.record(db_session=db_session, actor=actor, action="crew.update", entity_type="crew",
                 entity_id=crew.id, changes=changes)
    _commit_unique(db_session, crew.name)
    return crew
