"""Which alerts become tickets, and with what type, priority, skill and SLA class.

The built-in table below is the default; a YAML file (``RURALWATER_API__TICKET_RULES_FILE``)
overrides it kind by kind::

    rules:
      night_flow: {ticket_type: leak, priority: high, skill: pipe, sla_class: ordinary}
      quality_event: {create: false}

Two adjustments apply on top of a rule: a critical alert is urgent, and an alert about a
household on the social monitoring list is at least high priority (its water must never be
cut off).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from api.crews.models import Skill
from api.tickets.models import Priority, SlaClass, TicketType
from common.alerts import AlertKind, Severity
from common.settings import ApiSettings


class TicketRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    create: bool = True
    ticket_type: TicketType = TicketType.OTHER
    priority: Priority = Priority.NORMAL
    skill: Skill = Skill.PIPE
    sla_class: SlaClass = SlaClass.ORDINARY


def _rule(ticket_type: TicketType, priority: Priority, skill: Skill,
          sla_class: SlaClass) -> TicketRule:
    return TicketRule(ticket_type=ticket_type, priority=priority, skill=skill,
                      sla_class=sla_class)


_T, _P, _S, _C = TicketType, Priority, Skill, SlaClass
DEFAULT_RULES: dict[AlertKind, TicketRule] = {
    AlertKind.NIGHT_FLOW: _rule(_T.LEAK, _P.HIGH, _S.PIPE, _C.ORDINARY),
    AlertKind.BURST: _rule(_T.LEAK, _P.URGENT, _S.PIPE, _C.MAJOR),
    AlertKind.WATER_BALANCE: _rule(_T.LEAK, _P.NORMAL, _S.PIPE, _C.MAJOR),
    AlertKind.CUSTOMER_LEAK: _rule(_T.METER, _P.NORMAL, _S.METER, _C.MINOR),
    # Shortages are handled by the emergency plans (api/emergency), not by a ticket.
    AlertKind.SHORTAGE: TicketRule(create=False),
    AlertKind.QUALITY_LIMIT: _rule(_T.WATER_QUALITY, _P.URGENT, _S.WATER_QUALITY, _C.MINOR),
    AlertKind.QUALITY_EVENT: _rule(_T.WATER_QUALITY, _P.NORMAL, _S.WATER_QUALITY,
                                   _C.ORDINARY),
    AlertKind.SENSOR_FAULT: _rule(_T.WATER_QUALITY, _P.LOW, _S.WATER_QUALITY, _C.ORDINARY),
    AlertKind.DEVICE_SILENT: _rule(_T.OFFLINE_DEVICE, _P.NORMAL, _S.METER, _C.ORDINARY),
    AlertKind.GATEWAY_SILENT: _rule(_T.OFFLINE_DEVICE, _P.HIGH, _S.PUMP_ELECTRICAL,
                                    _C.ORDINARY),
    AlertKind.LOW_BATTERY: _rule(_T.METER, _P.LOW, _S.METER, _C.MINOR),
    AlertKind.VALVE_CLOSED: _rule(_T.VALVE, _P.HIGH, _S.METER, _C.MINOR),
    AlertKind.TAMPER: _rule(_T.METER, _P.NORMAL, _S.METER, _C.ORDINARY),
    AlertKind.REVERSE_FLOW: _rule(_T.METER, _P.NORMAL, _S.METER, _C.ORDINARY),
    AlertKind.PUMP_DRY_RUN: _rule(_T.PUMP, _P.URGENT, _S.PUMP_ELECTRICAL, _C.MAJOR),
    AlertKind.PUMP_OVERCURRENT: _rule(_T.PUMP, _P.HIGH, _S.PUMP_ELECTRICAL, _C.ORDINARY),
    AlertKind.PUMP_CYCLING: _rule(_T.PUMP, _P.NORMAL, _S.PUMP_ELECTRICAL, _C.ORDINARY),
    AlertKind.PUMP_FAULT: _rule(_T.PUMP, _P.HIGH, _S.PUMP_ELECTRICAL, _C.ORDINARY),
}


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: dict[AlertKind, TicketRule]


class RulesError(ValueError):
    """The ticket rules file is unreadable or invalid."""


def load_rules(path: Path | None) -> dict[AlertKind, TicketRule]:
    """The default rules, overridden kind by kind by the YAML file at ``path``."""
    rules = dict(DEFAULT_RULES)
    if path is None:
        return rules
    try:
        document = yaml.safe_load(path.read_text())
        parsed = RulesFile.model_validate(document)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise RulesError(f"ticket rules file {path}: {exc}") from exc
    rules.update(parsed.rules)
    return rules


def adjusted_priority(rule: TicketRule, severity: Severity, monitored: bool) -> Priority:
    """The rule's priority, raised for critical alerts and monitored households."""
    priority = rule.priority
    if severity is Severity.CRITICAL:
        priority = Priority.URGENT
    if monitored and priority.rank < Priority.HIGH.rank:
        priority = Priority.HIGH
    return priority


def sla_hours(sla_class: SlaClass, settings: ApiSettings) -> float:
    return {
        SlaClass.MINOR: settings.sla_minor_h,
        SlaClass.ORDINARY: settings.sla_ordinary_h,
        SlaClass.MAJOR: settings.sla_major_h,
    }[sla_class]


def due_at(created: datetime, sla_class: SlaClass, settings: ApiSettings) -> datetime:
    """When the repair commitment for this SLA class runs out."""
    return created + timedelta(hours=sla_hours(sla_class, settings))
