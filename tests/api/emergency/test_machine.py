"""The activation state machine on its own: no database, no clock."""

from __future__ import annotations

import pytest

from api.emergency.machine import (
    ActivationState,
    ActivationStatus,
    ChangeKind,
    ClosingRefused,
    TaskStatus,
    check_task_transition,
    close,
    observe,
)
from api.emergency.plans import default_plan

PLAN = default_plan()
IV_TASKS = {"watch_source": TaskStatus.OPEN, "restrict_non_domestic": TaskStatus.OPEN}


def codes(change_create: list) -> list[str]:  # type: ignore[type-arg]
    return [action.code for _, action in change_create]


def test_nothing_happens_without_a_level_and_without_an_activation() -> None:
    assert observe(PLAN, None, None).kind is ChangeKind.NONE


def test_a_level_activates_with_the_tasks_it_requires() -> None:
    change = observe(PLAN, None, "III")
    assert (change.kind, change.status, change.level) == (ChangeKind.ACTIVATED,
                                                          ActivationStatus.ACTIVE, "III")
    assert codes(change.create) == ["watch_source", "restrict_non_domestic",
                                    "scheduled_supply", "check_monitored_households"]


def test_escalation_adds_only_the_new_actions() -> None:
    change = observe(PLAN, ActivationState(ActivationStatus.ACTIVE, "IV", IV_TASKS), "II")
    assert (change.kind, change.from_level, change.level) == (ChangeKind.ESCALATED, "IV", "II")
    assert codes(change.create) == ["scheduled_supply", "check_monitored_households",
                                    "water_trucking", "emergency_well"]


def test_the_same_level_again_changes_nothing() -> None:
    change = observe(PLAN, ActivationState(ActivationStatus.ACTIVE, "IV", IV_TASKS), "IV")
    assert change.kind is ChangeKind.NONE and change.create == []


def test_deescalation_stands_down_open_tasks_no_longer_required_but_not_work_under_way(
        ) -> None:
    tasks = {**IV_TASKS, "scheduled_supply": TaskStatus.IN_PROGRESS,
             "check_monitored_households": TaskStatus.OPEN, "water_trucking": TaskStatus.OPEN,
             "emergency_well": TaskStatus.DONE}
    change = observe(PLAN, ActivationState(ActivationStatus.ACTIVE, "II", tasks), "IV")
    assert (change.kind, change.level) == (ChangeKind.DEESCALATED, "IV")
    assert change.stand_down == ["check_monitored_households", "water_trucking"]
    assert change.create == []


def test_a_cleared_alert_stands_down_and_a_new_level_resumes() -> None:
    active = ActivationState(ActivationStatus.ACTIVE, "III", {})
    standing_down = observe(PLAN, active, None)
    assert (standing_down.kind, standing_down.status) == (ChangeKind.STANDING_DOWN,
                                                          ActivationStatus.STANDING_DOWN)
    waiting = ActivationState(ActivationStatus.STANDING_DOWN, "III", {})
    assert observe(PLAN, waiting, None).kind is ChangeKind.NONE
    assert observe(PLAN, waiting, "III").kind is ChangeKind.RESUMED
    assert observe(PLAN, waiting, "II").kind is ChangeKind.ESCALATED


def test_a_stood_down_action_comes_back_on_escalation() -> None:
    tasks = {**IV_TASKS, "scheduled_supply": TaskStatus.STOOD_DOWN}
    change = observe(PLAN, ActivationState(ActivationStatus.ACTIVE, "IV", tasks), "III")
    assert codes(change.create) == ["scheduled_supply", "check_monitored_households"]


def test_closing_an_active_activation_needs_force() -> None:
    active = ActivationState(ActivationStatus.ACTIVE, "II", {"water_trucking":
                                                             TaskStatus.IN_PROGRESS})
    with pytest.raises(ClosingRefused, match="still calls for level II"):
        close(active, force=False)
    assert close(active, force=True).stand_down == ["water_trucking"]
    with pytest.raises(ClosingRefused, match="already closed"):
        close(ActivationState(ActivationStatus.CLOSED, "II", {}), force=True)


def test_task_transitions_are_checked() -> None:
    check_task_transition(TaskStatus.OPEN, TaskStatus.IN_PROGRESS)
    check_task_transition(TaskStatus.IN_PROGRESS, TaskStatus.DONE)
    with pytest.raises(ValueError, match="cannot become in_progress; allowed: none"):
        check_task_transition(TaskStatus.DONE, TaskStatus.IN_PROGRESS)
