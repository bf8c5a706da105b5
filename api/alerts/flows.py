"""Receiving an alert: store it (and keep its ticket in step), then let the emergency plans
see it (a shortage alert may activate, escalate or stand down a plan)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.orm import Session

from api.alerts import service
from api.alerts.service import IntakeResult
from api.auth.security import Principal
from api.emergency import service as emergency
from api.emergency.plans import PlanDefinition
from api.tickets.rules import TicketRule
from common.alerts import Alert, AlertKind
from common.settings import ApiSettings


def receive(*, db_session: Session, alert: Alert, actor: Principal,
            rules: Mapping[AlertKind, TicketRule], plans: Iterable[PlanDefinition],
            settings: ApiSettings) -> IntakeResult:
    """Intake, then the emergency plans (each commits its own change; repeats are no-ops)."""
    result = service.intake(db_session=db_session, alert=alert, actor=actor, rules=rules,
                            settings=settings)
    if result.changed:
        for plan in plans:
            emergency.apply_alert(db_session=db_session, alert=alert, plan=plan, actor=actor)
    return result
