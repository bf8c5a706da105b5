"""Scheduling routes: re-plan now, a crew's route with ETAs, a crew's reported position.

The router's lifespan starts the re-plan loop (api/scheduling/loop.py) when
``replan_loop`` is on; run it in one process only, like the reminder loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api.auth.models import Role
from api.auth.security import Principal
from api.crews.schemas import CrewRead
from api.crews.service import to_read
from api.deps import AnyUser, Dispatcher, RowId, SessionDep, require_role
from api.scheduling import service
from api.scheduling.config import SchedulingConfig, scheduling_config
from api.scheduling.loop import Replanner
from api.scheduling.schemas import CrewRoute, PositionReport, ScheduleResult


def config_of(app: FastAPI) -> SchedulingConfig:
    """The app's scheduling settings (set at start-up; tests may set their own)."""
    config = getattr(app.state, "scheduling_config", None)
    if isinstance(config, SchedulingConfig):
        return config
    config = scheduling_config(app.state.api_settings)
    app.state.scheduling_config = config
    return config


def get_config(request: Request) -> SchedulingConfig:
    return config_of(request.app)


ConfigDep = Annotated[SchedulingConfig, Depends(get_config)]
FieldUser = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.DISPATCHER,
                                                      Role.CREW_MEMBER))]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    config = config_of(app)
    replanner: Replanner | None = None
    if config.replan_loop:
        replanner = Replanner(app.state.session_factory, config)
        replanner.start()
    app.state.replanner = replanner
    try:
        yield
    finally:
        if replanner is not None:
            replanner.stop()


router = APIRouter(prefix="/api/v1", tags=["scheduling"], lifespan=lifespan)


@router.post("/schedule", response_model=ScheduleResult)
async def schedule_now(request: Request, config: ConfigDep, actor: Dispatcher) -> ScheduleResult:
    """Re-plan every crew's route now (admins and dispatchers). Blocks for up to the
    planner's time limit; 409 when there is no active crew to plan for."""
    return await run_in_threadpool(service.replan,
                                   session_factory=request.app.state.session_factory,
                                   config=config, actor=actor)


@router.get("/crews/{crew_id}/route", response_model=CrewRoute)
def get_route(crew_id: RowId, db_session: SessionDep, config: ConfigDep,
              viewer: AnyUser) -> CrewRoute:
    """The crew's work with ETAs: in progress, en route, then scheduled by planned arrival.
    A crew member sees only their own crew's route."""
    return service.crew_route(db_session=db_session, crew_id=crew_id, viewer=viewer,
                              config=config)


@router.post("/crews/{crew_id}/position", response_model=CrewRead)
def report_position(crew_id: RowId, body: PositionReport, db_session: SessionDep,
                    actor: FieldUser) -> CrewRead:
    """Where the crew is now (its phone); the next plan starts its route there."""
    crew = service.report_position(db_session=db_session, crew_id=crew_id,
                                   latitude=body.latitude, longitude=body.longitude,
                                   actor=actor)
    return to_read(db_session, crew)
