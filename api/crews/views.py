"""Crew routes: anyone signed in may read; admins and dispatchers manage crews."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from api.crews import service
from api.crews.schemas import CrewCreate, CrewRead, CrewUpdate
from api.deps import AnyUser, Dispatcher, RowId, SessionDep

router = APIRouter(prefix="/api/v1/crews", tags=["crews"])


@router.get("", response_model=list[CrewRead])
def list_crews(db_session: SessionDep, _user: AnyUser,
               active: bool = Query(default=False, description="only active crews")
               ) -> list[CrewRead]:
    return [service.to_read(db_session, crew)
            for crew in service.get_all(db_session=db_session, active_only=active)]


@router.get("/{crew_id}", response_model=CrewRead)
def get_crew(crew_id: RowId, db_session: SessionDep, _user: AnyUser) -> CrewRead:
    return service.to_read(db_session, service.get(db_session=db_session, crew_id=crew_id))


@router.post("", response_model=CrewRead, status_code=status.HTTP_201_CREATED)
def create_crew(crew_in: CrewCreate, db_session: SessionDep, actor: Dispatcher) -> CrewRead:
    crew = service.create(db_session=db_session, crew_in=crew_in, actor=actor)
    return service.to_read(db_session, crew)


@router.patch("/{crew_id}", response_model=CrewRead)
def update_crew(crew_id: RowId, crew_in: CrewUpdate, db_session: SessionDep,
                actor: Dispatcher) -> CrewRead:
    crew = service.get(db_session=db_session, crew_id=crew_id)
    return service.to_read(db_session, service.update(db_session=db_session, crew=crew,
                                                      crew_in=crew_in, actor=actor))
