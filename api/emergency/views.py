"""HTTP routes for emergency plans: definitions, activations with tasks and log, closing,
task updates. Mount with no prefix; plans come from ``app.state.emergency_plans``
(name -> PlanDefinition), the shipped seasonal-shortage plan when unset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import AnyUser, Dispatcher, Offset, RowId, SessionDep
from api.emergency import service
from api.emergency.machine import ActivationStatus
from api.emergency.plans import PlanDefinition, default_plan
from api.emergency.schemas import (
    ActivationRead,
    ActivationSummary,
    CloseActivation,
    TaskRead,
    TaskUpdate,
)

router = APIRouter(prefix="/api/v1/emergency", tags=["emergency"])


def get_plans(request: Request) -> dict[str, PlanDefinition]:
    plans: dict[str, PlanDefinition] | None = getattr(request.app.state, "emergency_plans",
                                                      None)
    if plans is None:
        plan = default_plan()
        plans = {plan.name: plan}
        request.app.state.emergency_plans = plans
    return plans


PlansDep = Annotated[dict[str, PlanDefinition], Depends(get_plans)]


@router.get("/plans", response_model=list[PlanDefinition])
def list_plans(plans: PlansDep, _principal: AnyUser) -> list[PlanDefinition]:
    """The plan definitions in force: levels, triggers and actions."""
    return list(plans.values())


@router.get("/activations", response_model=list[ActivationSummary])
def list_activations(db_session: SessionDep, _principal: AnyUser,
                     status: ActivationStatus | None = None,
                     live: bool = Query(default=False,
                                        description="only active or standing down"),
                     limit: int = Query(default=100, ge=1, le=1000),
                     offset: Offset = 0) -> list[ActivationSummary]:
    rows = service.get_all(db_session=db_session, status=status, live_only=live, limit=limit,
                           offset=offset)
    return [ActivationSummary.model_validate(row) for row in rows]


@router.get("/activations/{activation_id}", response_model=ActivationRead)
def read_activation(activation_id: RowId, db_session: SessionDep,
                    _principal: AnyUser) -> ActivationRead:
    """One activation with its tasks and the duty officer's log."""
    return ActivationRead.model_validate(
        service.get(db_session=db_session, activation_id=activation_id))


@router.post("/activations/{activation_id}/close", response_model=ActivationRead)
def close_activation(activation_id: RowId, body: CloseActivation, db_session: SessionDep,
                     principal: Dispatcher) -> ActivationRead:
    """Close (after the alert cleared, or with ``force``); unfinished tasks are stood down."""
    activation = service.close(db_session=db_session, activation_id=activation_id,
                               actor=principal, reason=body.reason, force=body.force)
    return ActivationRead.model_validate(activation)


@router.patch("/tasks/{task_id}", response_model=TaskRead)
def update_task(task_id: RowId, body: TaskUpdate, db_session: SessionDep,
                principal: Dispatcher) -> TaskRead:
    """Move a task along, assign it or add a note."""
    task = service.update_task(db_session=db_session, task_id=task_id, update=body,
                               actor=principal)
    return TaskRead.model_validate(task)
