"""The activation state machine, pure: current state + what the data says -> the change.

States of one activation (one plan, one supply scheme):

* no live activation --level L--> ACTIVE at L, tasks for every action L requires;
* ACTIVE at C --level L > C--> escalated to L, tasks for the newly required actions;
* ACTIVE at C --level L < C--> de-escalated to L; OPEN tasks the lower level no longer
  requires are stood down, tasks already IN_PROGRESS stay with their assignee;
* ACTIVE --no level (alert resolved)--> STANDING_DOWN: the data says the shortage is over,
  the duty officer confirms by closing; tasks are left as they are;
* STANDING_DOWN --level L--> ACTIVE again (resumed, or escalated/de-escalated to L);
* ACTIVE or STANDING_DOWN --close by a person--> CLOSED, every unfinished task stood down.
  Closing while the data still calls for a level needs ``force`` (and a reason).

The same level reported again changes nothing: activations are idempotent per level. Tasks
are created only on activation and escalation (a task a person stood down by hand is not
re-created by the next report of the same level; it is by a later escalation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from api.emergency.plans import ActionDefinition, PlanDefinition, rank
from common.alerts import PlanLevel


class ActivationStatus(StrEnum):
    ACTIVE = "active"
    STANDING_DOWN = "standing_down"
    CLOSED = "closed"


class TaskStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    STOOD_DOWN = "stood_down"


#: task status -> the statuses a person may move it to
TASK_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OPEN: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.DONE,
                                TaskStatus.STOOD_DOWN}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.DONE, TaskStatus.STOOD_DOWN}),
    TaskStatus.DONE: frozenset(),
    TaskStatus.STOOD_DOWN: frozenset(),
}
LIVE_TASK_STATUSES = frozenset({TaskStatus.OPEN, TaskStatus.IN_PROGRESS, TaskStatus.DONE})


class ChangeKind(StrEnum):
    NONE = "none"
    ACTIVATED = "activated"
    ESCALATED = "escalated"
    DEESCALATED = "deescalated"
    RESUMED = "resumed"
    STANDING_DOWN = "standing_down"
    CLOSED = "closed"


class ClosingRefused(ValueError):
    """Closing an activation the data still calls for, without ``force``."""


@dataclass(frozen=True)
class ActivationState:
    """What the machine needs to know about a live activation (None level: none live)."""

    status: ActivationStatus
    level: PlanLevel
    #: action code -> status of its most recent task
    tasks: Mapping[str, TaskStatus] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    status: ActivationStatus | None
    level: PlanLevel | None
    from_level: PlanLevel | None = None
    create: list[tuple[PlanLevel, ActionDefinition]] = field(default_factory=list)
    stand_down: list[str] = field(default_factory=list)


def _missing_tasks(plan: PlanDefinition, level: PlanLevel,
                   tasks: Mapping[str, TaskStatus]) -> list[tuple[PlanLevel, ActionDefinition]]:
    """Actions ``level`` requires that have no live task (none yet, or stood down)."""
    return [(defined_at, action) for defined_at, action in plan.actions_at(level)
            if tasks.get(action.code) not in LIVE_TASK_STATUSES]


def observe(plan: PlanDefinition, state: ActivationState | None,
            level: PlanLevel | None) -> Change:
    """The change the data (``level`` the analysis calls for, None: no shortage) makes."""
    if state is None or state.status is ActivationStatus.CLOSED:
        if level is None:
            return Change(ChangeKind.NONE, None, None)
        return Change(ChangeKind.ACTIVATED, ActivationStatus.ACTIVE, level,
                      create=_missing_tasks(plan, level, {}))
    if level is None:
        if state.status is ActivationStatus.STANDING_DOWN:
            return Change(ChangeKind.NONE, state.status, state.level)
        return Change(ChangeKind.STANDING_DOWN, ActivationStatus.STANDING_DOWN, state.level,
                      from_level=state.level)
    if rank(level) > rank(state.level):
        return Change(ChangeKind.ESCALATED, ActivationStatus.ACTIVE, level,
                      from_level=state.level, create=_missing_tasks(plan, level, state.tasks))
    if rank(level) < rank(state.level):
        still_required = {action.code for _, action in plan.actions_at(level)}
        stand_down = [code for code, status in state.tasks.items()
                      if status is TaskStatus.OPEN and code not in still_required]
        return Change(ChangeKind.DEESCALATED, ActivationStatus.ACTIVE, level,
                      from_level=state.level, stand_down=stand_down)
    if state.status is ActivationStatus.STANDING_DOWN:
        return Change(ChangeKind.RESUMED, ActivationStatus.ACTIVE, level,
                      from_level=state.level)
    return Change(ChangeKind.NONE, state.status, state.level)


def close(state: ActivationState, *, force: bool) -> Change:
    """A person closes the activation: every unfinished task is stood down."""
    if state.status is ActivationStatus.CLOSED:
        raise ClosingRefused("the activation is already closed")
    if state.status is ActivationStatus.ACTIVE and not force:
        raise ClosingRefused(
            f"the data still calls for level {state.level}; close with force=true and a "
            "reason, or wait until the shortage alert is resolved")
    unfinished = [code for code, status in state.tasks.items()
                  if status in (TaskStatus.OPEN, TaskStatus.IN_PROGRESS)]
    return Change(ChangeKind.CLOSED, ActivationStatus.CLOSED, state.level,
                  from_level=state.level, stand_down=unfinished)


def check_task_transition(current: TaskStatus, wanted: TaskStatus) -> None:
    """Raise ``ValueError`` naming the allowed moves when ``current -> wanted`` is not one."""
    allowed = TASK_TRANSITIONS[current]
    if wanted not in allowed:
        names = ", ".join(sorted(status.value for status in allowed)) or "none (final)"
        raise ValueError(f"a task {current.value} cannot become {wanted.value}; "
                         f"allowed: {names}")
