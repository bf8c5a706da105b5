"""Drive plan activations from shortage alerts; close them; move their tasks along.

Keyword-only functions taking the session; each commits its unit of work with its audit
entries and, for level changes, a notification to the dispatcher (api.notify).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.audit import service as audit
from api.auth.security import SYSTEM, Principal
from api.db import utcnow
from api.emergency import machine
from api.emergency.machine import ActivationState, ActivationStatus, Change, ChangeKind, TaskStatus
from api.emergency.models import EmergencyActivation, EmergencyLogEntry, EmergencyTask
from api.emergency.plans import PlanDefinition, rank
from api.emergency.schemas import TaskUpdate
from api.errors import Conflict, InvalidTransition, NotFound
from api.notify import service as notify
from api.notify.message import NoticeSeverity
from common.alerts import Alert, AlertStatus, PlanLevel

NOTIFY_POLICY = "emergency"


def get(*, db_session: Session, activation_id: int) -> EmergencyActivation:
    activation = db_session.get(EmergencyActivation, activation_id,
                                options=[selectinload(EmergencyActivation.tasks),
                                         selectinload(EmergencyActivation.log)])
    if activation is None:
        raise NotFound(f"no emergency activation {activation_id}")
    return activation


def get_all(*, db_session: Session, status: ActivationStatus | None = None,
            live_only: bool = False, limit: int = 100,
            offset: int = 0) -> Sequence[EmergencyActivation]:
    """Newest first; ``live_only``: active or standing down."""
    query = select(EmergencyActivation)
    if status is not None:
        query = query.where(EmergencyActivation.status == status.value)
    if live_only:
        query = query.where(EmergencyActivation.status != ActivationStatus.CLOSED.value)
    query = query.order_by(EmergencyActivation.opened_at.desc(), EmergencyActivation.id.desc())
    return db_session.scalars(query.limit(limit).offset(offset)).all()


def get_live(*, db_session: Session, plan: str, alert_key: str) -> EmergencyActivation | None:
    """The activation of ``plan`` for ``alert_key`` that is not closed, if any."""
    query = (select(EmergencyActivation)
             .where(EmergencyActivation.plan == plan, EmergencyActivation.alert_key == alert_key,
                    EmergencyActivation.status != ActivationStatus.CLOSED.value)
             .options(selectinload(EmergencyActivation.tasks),
                      selectinload(EmergencyActivation.log)))
    return db_session.scalars(query).first()


def observed_level(plan: PlanDefinition, alert: Alert) -> PlanLevel | None:
    """The level the alert calls for: none once resolved, else its ``plan_level``, else what
    the plan's triggers make of its evidence."""
    if alert.status is AlertStatus.RESOLVED:
        return None
    return alert.plan_level or plan.level_for(alert.evidence)


def _state(activation: EmergencyActivation) -> ActivationState:
    latest: dict[str, TaskStatus] = {}
    for task in activation.tasks:  # ordered by id: the latest task per action wins
        latest[task.action_code] = TaskStatus(task.status)
    return ActivationState(ActivationStatus(activation.status), _level(activation.level), latest)


def _level(value: str) -> PlanLevel:
    for level in ("IV", "III", "II", "I"):
        if value == level:
            return level
    raise ValueError(f"not a plan level: {value!r}")


def _describe(plan: PlanDefinition, level: PlanLevel) -> str:
    definition = plan.levels[level]
    return f"level {level} ({definition.name}, {definition.colour})"


def _log(activation: EmergencyActivation, *, at: datetime, kind: str, actor: Principal,
         message: str, from_level: str | None = None, to_level: str | None = None) -> None:
    activation.log.append(EmergencyLogEntry(at=at, kind=kind, from_level=from_level,
                                            to_level=to_level, actor=_actor(actor),
                                            message=message))


def _actor(principal: Principal) -> str:
    return "system" if principal is SYSTEM or principal.name == "system" else principal.actor


def _level_message(plan: PlanDefinition, change: Change, alert: Alert) -> str:
    assert change.level is not None  # every change but NONE names its level
    target = _describe(plan, change.level)
    if change.kind is ChangeKind.ACTIVATED:
        return f"{plan.title}: {target} activated for {alert.place.scheme or alert.key}: " \
               f"{alert.title}"
    if change.kind is ChangeKind.STANDING_DOWN:
        return f"the shortage alert cleared at {target}; standing down until a duty officer " \
               "closes the activation"
    verb = {ChangeKind.ESCALATED: "escalated", ChangeKind.DEESCALATED: "de-escalated",
            ChangeKind.RESUMED: "resumed"}[change.kind]
    return f"{verb} from level {change.from_level} to {target}: {alert.title}"


def _create_tasks(plan: PlanDefinition, activation: EmergencyActivation, change: Change, *,
                  now: datetime, actor: Principal) -> None:
    for defined_at, action in change.create:
        activation.tasks.append(EmergencyTask(
            action_code=action.code, title=action.title, level=defined_at,
            assignee_role=action.assignee_role, status=TaskStatus.OPEN.value,
            due_at=now + timedelta(hours=action.due_within_h), created_at=now,
            updated_at=now, note=""))
        _log(activation, at=now, kind="task_created", actor=actor,
             message=f"task {action.code} for {action.assignee_role}, due within "
                     f"{action.due_within_h:g} h: {action.title}", to_level=defined_at)


def _stand_down_tasks(activation: EmergencyActivation, codes: Sequence[str], *, now: datetime,
                      actor: Principal, why: str) -> None:
    wanted = set(codes)
    for task in activation.tasks:
        if task.action_code in wanted and task.status in (TaskStatus.OPEN.value,
                                                          TaskStatus.IN_PROGRESS.value):
            task.status = TaskStatus.STOOD_DOWN.value
            task.updated_at = now
            _log(activation, at=now, kind="task_stood_down", actor=actor,
                 message=f"task {task.action_code} stood down: {why}")


def _notify_level(plan: PlanDefinition, db_session: Session, activation: EmergencyActivation,
                  change: Change, message: str, now: datetime) -> None:
    if change.kind not in (ChangeKind.ACTIVATED, ChangeKind.ESCALATED) or change.level is None:
        return
    severity = NoticeSeverity.CRITICAL if rank(change.level) >= rank("II") else \
        NoticeSeverity.WARNING
    tasks = "\n".join(f"- {task.title} ({task.assignee_role}, due "
                      f"{task.due_at:%Y-%m-%d %H:%M} UTC)"
                      for task in activation.tasks if task.status == TaskStatus.OPEN.value)
    notify.raise_notice(db_session=db_session, subject=f"emergency:{activation.id}",
                        title=f"Emergency {_describe(plan, change.level)}: {activation.subject}",
                        text=f"{message}\n\n{tasks}", severity=severity, policy=NOTIFY_POLICY,
                        now=now, commit=False)


def apply_alert(*, db_session: Session, alert: Alert, plan: PlanDefinition,
                actor: Principal = SYSTEM, now: datetime | None = None,
                commit: bool = True) -> EmergencyActivation | None:
    """Bring the plan's activation for ``alert`` in line with the level the data calls for.

    Alerts of another kind are ignored (None). Repeating the same level only records the
    latest evidence. Returns the activation concerned, if there is one. ``commit=False``
    leaves the change in the caller's transaction (alert intake takes alerts in batches,
    each alert's plan change in the same transaction as the alert).
    """
    if alert.kind is not plan.alert_kind:
        return None
    now = now or utcnow()
    activation = get_live(db_session=db_session, plan=plan.name, alert_key=alert.key)
    level = observed_level(plan, alert)
    change = machine.observe(plan, _state(activation) if activation else None, level)
    if change.kind is ChangeKind.NONE:
        if activation is not None:
            activation.last_alert_at = now
            activation.evidence = dict(alert.evidence)
            if commit:
                db_session.commit()
        return activation
    assert change.level is not None and change.status is not None
    if activation is None:
        activation = EmergencyActivation(
            plan=plan.name, alert_key=alert.key, subject=alert.place.scheme or alert.key,
            village=alert.place.village, status=change.status.value, level=change.level,
            peak_level=change.level, opened_at=now, changed_at=now, last_alert_at=now,
            evidence=dict(alert.evidence), tasks=[], log=[])
        db_session.add(activation)
    activation.status, activation.level = change.status.value, change.level
    if rank(change.level) > rank(_level(activation.peak_level)):
        activation.peak_level = change.level
    activation.changed_at = activation.last_alert_at = now
    activation.evidence = dict(alert.evidence)
    message = _level_message(plan, change, alert)
    _log(activation, at=now, kind=change.kind.value, actor=actor, message=message,
         from_level=change.from_level, to_level=change.level)
    _create_tasks(plan, activation, change, now=now, actor=actor)
    _stand_down_tasks(activation, change.stand_down, now=now, actor=actor,
                      why=f"not required at level {change.level}")
    db_session.flush()
    _notify_level(plan, db_session, activation, change, message, now)
    audit.record(db_session=db_session, actor=actor, action=f"emergency.{change.kind.value}",
                 entity_type="emergency_activation", entity_id=activation.id,
                 reason=alert.title, changes={"from_level": change.from_level,
                                              "to_level": change.level,
                                              "status": change.status.value})
    if commit:
        db_session.commit()
    return activation


def close(*, db_session: Session, activation_id: int, actor: Principal, reason: str,
          force: bool = False, now: datetime | None = None) -> EmergencyActivation:
    """A duty officer closes the activation; unfinished tasks are stood down."""
    now = now or utcnow()
    activation = get(db_session=db_session, activation_id=activation_id)
    try:
        change = machine.close(_state(activation), force=force)
    except machine.ClosingRefused as exc:
        raise Conflict(f"emergency activation {activation_id}: {exc}") from exc
    activation.status = ActivationStatus.CLOSED.value
    activation.closed_at = activation.changed_at = now
    activation.closed_by = actor.actor
    activation.close_reason = reason
    _stand_down_tasks(activation, change.stand_down, now=now, actor=actor,
                      why="the activation was closed")
    _log(activation, at=now, kind=ChangeKind.CLOSED.value, actor=actor,
         message=f"closed{' (forced)' if force else ''}: {reason}",
         from_level=activation.level)
    notify.close_subject(db_session=db_session, subject=f"emergency:{activation.id}", now=now,
                         commit=False)
    audit.record(db_session=db_session, actor=actor, action="emergency.close",
                 entity_type="emergency_activation", entity_id=activation.id, reason=reason,
                 changes={"force": force, "stood_down": change.stand_down})
    db_session.commit()
    return activation


def get_task(*, db_session: Session, task_id: int) -> EmergencyTask:
    task = db_session.get(EmergencyTask, task_id)
    if task is None:
        raise NotFound(f"no emergency task {task_id}")
    return task


def update_task(*, db_session: Session, task_id: int, update: TaskUpdate, actor: Principal,
                now: datetime | None = None) -> EmergencyTask:
    """Move a task along (open -> in_progress -> done, or stood down), note, assign it.

    Taking a task in progress without naming an assignee assigns it to the actor.
    """
    now = now or utcnow()
    task = get_task(db_session=db_session, task_id=task_id)
    activation = task.activation
    if activation.status == ActivationStatus.CLOSED.value:
        raise Conflict(f"emergency activation {activation.id} is closed; its tasks are final")
    changes: dict[str, object] = {}
    if update.status is not None and update.status.value != task.status:
        try:
            machine.check_task_transition(TaskStatus(task.status), update.status)
        except ValueError as exc:
            raise InvalidTransition(f"task {task_id}: {exc}") from exc
        changes["status"] = [task.status, update.status.value]
        task.status = update.status.value
        if update.status is TaskStatus.IN_PROGRESS and task.assignee is None \
                and update.assignee is None:
            task.assignee = actor.actor
            changes["assignee"] = [None, actor.actor]
    if update.assignee is not None and update.assignee != task.assignee:
        changes["assignee"] = [task.assignee, update.assignee]
        task.assignee = update.assignee
    if update.note is not None and update.note != task.note:
        changes["note"] = update.note
        task.note = update.note
    if not changes:
        return task
    task.updated_at = now
    _log(activation, at=now, kind="task_updated", actor=actor,
         message=f"task {task.action_code}: " + ", ".join(
             f"{name} {value[0]} -> {value[1]}" if isinstance(value, list) else f"{name}: {value}"
             for name, value in changes.items()))
    audit.record(db_session=db_session, actor=actor, action="emergency.task.update",
                 entity_type="emergency_task", entity_id=task.id, changes=changes)
    db_session.commit()
    return task
