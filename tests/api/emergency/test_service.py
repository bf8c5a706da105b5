"""Activations driven by shortage alerts, in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit.models import AuditEntry
from api.auth.models import Role
from api.auth.security import Principal
from api.emergency import service
from api.emergency.machine import TaskStatus
from api.emergency.models import EmergencyActivation
from api.emergency.plans import default_plan
from api.emergency.schemas import TaskUpdate
from api.errors import Conflict, InvalidTransition
from api.notify import service as notify
from common.alerts import AlertKind, AlertStatus, Evidence, PlanLevel

from .alerts import shortage

PLAN = default_plan()
T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
OFFICER = Principal(name="zhou", role=Role.DISPATCHER, user_id=5)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def apply(db_session: Session, level: PlanLevel | None, hours: float, *, scheme: str = "v003",
          status: AlertStatus = AlertStatus.OPEN,
          evidence: Evidence | None = None) -> EmergencyActivation | None:
    alert = shortage(level, scheme=scheme, status=status, evidence=evidence)
    return service.apply_alert(db_session=db_session, alert=alert, plan=PLAN, now=at(hours))


def tasks(activation: EmergencyActivation) -> list[tuple[str, str, str]]:
    return [(task.level, task.action_code, task.status) for task in activation.tasks]


def log(activation: EmergencyActivation) -> list[tuple[str, str | None, str | None]]:
    return [(entry.kind, entry.from_level, entry.to_level) for entry in activation.log
            if not entry.kind.startswith("task_")]


def test_escalation_from_iv_through_iii_to_ii_adds_each_levels_tasks(
        db_session: Session) -> None:
    first = apply(db_session, "IV", 0)
    assert first is not None
    assert tasks(first) == [("IV", "watch_source", "open"),
                            ("IV", "restrict_non_domestic", "open")]
    assert first.tasks[0].due_at == at(24)
    apply(db_session, "III", 24)
    activation = apply(db_session, "II", 48)
    assert activation is not None and activation.id == first.id
    assert (activation.status, activation.level, activation.peak_level) == ("active", "II",
                                                                            "II")
    assert [code for _, code, _ in tasks(activation)] == [
        "watch_source", "restrict_non_domestic", "scheduled_supply",
        "check_monitored_households", "water_trucking", "emergency_well"]
    trucking = activation.tasks[4]
    assert (trucking.assignee_role, trucking.due_at) == ("dispatcher", at(48 + 12))
    assert log(activation) == [("activated", None, "IV"), ("escalated", "IV", "III"),
                               ("escalated", "III", "II")]
    assert [e.kind for e in activation.log].count("task_created") == 6
    assert db_session.scalars(select(EmergencyActivation)).all() == [activation]


def test_repeated_alerts_at_the_same_level_are_idempotent(db_session: Session) -> None:
    for hour in range(5):
        activation = apply(db_session, "III", hour,
                           evidence={"days_to_shortfall": 6.0 - hour / 10})
    assert activation is not None
    assert len(activation.tasks) == 4 and log(activation) == [("activated", None, "III")]
    assert activation.last_alert_at == at(4) and activation.changed_at == at(0)
    assert activation.evidence == {"days_to_shortfall": 5.6}
    audit = db_session.scalars(select(AuditEntry.action)).all()
    assert audit == ["emergency.activated"]


def test_deescalation_stands_down_open_tasks_and_keeps_work_under_way(
        db_session: Session) -> None:
    activation = apply(db_session, "II", 0)
    assert activation is not None
    trucking = next(t for t in activation.tasks if t.action_code == "water_trucking")
    service.update_task(db_session=db_session, task_id=trucking.id, actor=OFFICER,
                        update=TaskUpdate(status=TaskStatus.IN_PROGRESS), now=at(1))
    apply(db_session, "IV", 30)
    db_session.refresh(activation)
    assert activation.level == "IV" and activation.peak_level == "II"
    assert tasks(activation) == [
        ("IV", "watch_source", "open"), ("IV", "restrict_non_domestic", "open"),
        ("III", "scheduled_supply", "stood_down"),
        ("III", "check_monitored_households", "stood_down"),
        ("II", "water_trucking", "in_progress"), ("II", "emergency_well", "stood_down")]
    assert log(activation)[-1] == ("deescalated", "II", "IV")


def test_a_cleared_alert_stands_down_and_the_duty_officer_closes(db_session: Session) -> None:
    activation = apply(db_session, "III", 0)
    assert activation is not None
    with pytest.raises(Conflict, match="still calls for level III"):
        service.close(db_session=db_session, activation_id=activation.id, actor=OFFICER,
                      reason="rain came")
    apply(db_session, None, 40, status=AlertStatus.RESOLVED)
    assert activation.status == "standing_down"
    closed = service.close(db_session=db_session, activation_id=activation.id, actor=OFFICER,
                           reason="well level recovered after rain", now=at(48))
    assert (closed.status, closed.closed_by, closed.closed_at) == ("closed", "user:zhou",
                                                                   at(48))
    assert {task.status for task in closed.tasks} == {"stood_down"}
    assert log(closed)[-2:] == [("standing_down", "III", "III"), ("closed", "III", None)]
    assert closed.log[-1].actor == "user:zhou"
    with pytest.raises(Conflict, match="already closed"):
        service.close(db_session=db_session, activation_id=activation.id, actor=OFFICER,
                      reason="again")
    again = apply(db_session, "IV", 100)
    assert again is not None and again.id != activation.id


def test_force_closes_an_activation_the_data_still_calls_for(db_session: Session) -> None:
    activation = apply(db_session, "IV", 0)
    assert activation is not None
    closed = service.close(db_session=db_session, activation_id=activation.id, actor=OFFICER,
                           reason="tank sensor fault, not a shortage", force=True)
    assert closed.status == "closed" and closed.log[-1].message.startswith("closed (forced)")


def test_activation_and_escalation_notify_the_dispatcher_and_closing_ends_it(
        db_session: Session) -> None:
    activation = apply(db_session, "IV", 0)
    assert activation is not None
    subject = f"emergency:{activation.id}"
    notice = notify.get_open_for_subject(db_session=db_session, subject=subject)
    assert notice is not None and notice.policy == "emergency"
    assert notice.title == "Emergency level IV (general, blue): v003"
    assert "Restrict non-domestic use" in notice.text
    apply(db_session, "II", 10)
    refreshed = notify.get_open_for_subject(db_session=db_session, subject=subject)
    assert refreshed is not None and refreshed.id == notice.id
    assert refreshed.severity == "critical" and "Truck drinking water" in refreshed.text
    service.close(db_session=db_session, activation_id=activation.id, actor=OFFICER,
                  reason="test", force=True)
    assert notify.get_open_for_subject(db_session=db_session, subject=subject) is None


def test_without_a_plan_level_the_triggers_read_the_evidence(db_session: Session) -> None:
    activation = apply(db_session, None, 0, evidence={"unmet_share": 0.35,
                                                      "days_to_shortfall": 9.0})
    assert activation is not None and activation.level == "II"


def test_other_alert_kinds_and_quiet_schemes_start_nothing(db_session: Session) -> None:
    other = shortage("II").model_copy(update={"kind": AlertKind.BURST, "key": "burst:v003"})
    assert service.apply_alert(db_session=db_session, alert=other, plan=PLAN) is None
    assert apply(db_session, None, 0, evidence={"days_to_shortfall": 60.0}) is None
    assert db_session.scalars(select(EmergencyActivation)).all() == []


def test_each_scheme_has_its_own_activation(db_session: Session) -> None:
    one = apply(db_session, "IV", 0, scheme="v003")
    two = apply(db_session, "II", 0, scheme="v017")
    assert one is not None and two is not None and one.id != two.id
    live = service.get_all(db_session=db_session, live_only=True)
    assert {activation.subject for activation in live} == {"v003", "v017"}


def test_tasks_move_forward_only_and_record_who(db_session: Session) -> None:
    activation = apply(db_session, "IV", 0)
    assert activation is not None
    task_id = activation.tasks[1].id
    started = service.update_task(db_session=db_session, task_id=task_id, actor=OFFICER,
                                  update=TaskUpdate(status=TaskStatus.IN_PROGRESS), now=at(1))
    assert (started.status, started.assignee) == ("in_progress", "user:zhou")
    done = service.update_task(db_session=db_session, task_id=task_id, actor=OFFICER,
                               update=TaskUpdate(status=TaskStatus.DONE,
                                                 note="notice posted in all 3 hamlets"))
    assert done.status == "done" and done.note == "notice posted in all 3 hamlets"
    with pytest.raises(InvalidTransition, match="cannot become open"):
        service.update_task(db_session=db_session, task_id=task_id, actor=OFFICER,
                            update=TaskUpdate(status=TaskStatus.OPEN))
    entries = [e.message for e in activation.log if e.kind == "task_updated"]
    assert entries[0] == ("task restrict_non_domestic: status open -> in_progress, "
                          "assignee None -> user:zhou")
