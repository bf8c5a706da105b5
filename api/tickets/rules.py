"""Which alerts become tickets, and with what type, priority, skill, SLA class and problem.

The built-in table below is the default; a YAML file (``RURALWATER_API__TICKET_RULES_FILE``)
overrides it kind by kind::

    rules:
      night_flow: {ticket_type: leak, priority: high, skill: pipe, sla_class: ordinary}
      quality_event: {create: false}
      tamper: {problem: "tamper:{household}"}

**One ticket per problem.** Each rule names the problem its alerts are about as a template
over the alert's place (``{dma}``, ``{device}``, ``{household}``, ``{village}``,
``{scheme}``, ``{branch}``, ``{township}``) and ``{key}`` (the alert key) or ``{subject}``
(the key after its kind). Alerts whose problem keys are equal join one ticket: by default
the three leak kinds of a DMA (``burst``, ``night_flow``, ``water_balance``) are one problem
``leak:<dma>``, and the kinds about one device (a meter's silence, battery, valve, tamper
and reverse flow; a pump's dry run, overcurrent, cycling and fault) are one
``device:<device>``. A template naming a place the alert lacks falls back to the alert key.
How a joining alert changes its ticket is in api/tickets/service.py (``sync_with_alert``).

Two adjustments apply on top of a rule: a critical alert is urgent, and an alert about a
household on the social monitoring list is at least high priority (its water must never be
cut off).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.crews.models import Skill
from api.tickets.models import Priority, SlaClass, TicketType
from common.alerts import Alert, AlertKind, Severity
from common.settings import ApiSettings

PLACE_FIELDS = ("township", "village", "scheme", "dma", "branch", "device", "household")
#: A problem template: ``{key}``, or ``<name>:`` then literal text and ``{placeholders}``
#: (place fields, key, subject), e.g. ``leak:{dma}``.
_TEMPLATE = r"^(\{key\}|[a-z_]+:(\{[a-z]+\}|[^\s{}])+)$"


class TicketRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    create: bool = True
    ticket_type: TicketType = TicketType.OTHER
    priority: Priority = Priority.NORMAL
    skill: Skill = Skill.PIPE
    sla_class: SlaClass = SlaClass.ORDINARY
    #: The problem the alert is about (module docstring); alerts with equal keys share a
    #: ticket. The default, ``{key}``, gives each alert key its own ticket.
    problem: str = Field(default="{key}", max_length=120, pattern=_TEMPLATE)

    @field_validator("problem")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        names = set(re.findall(r"\{([a-z]+)\}", template))
        unknown = names - set(PLACE_FIELDS) - {"key", "subject"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)} in problem "
                             f"{template!r} (known: {', '.join(PLACE_FIELDS)}, key, subject)")
        return template


def _rule(ticket_type: TicketType, priority: Priority, skill: Skill,
          sla_class: SlaClass, problem: str = "{key}") -> TicketRule:
    return TicketRule(ticket_type=ticket_type, priority=priority, skill=skill,
                      sla_class=sla_class, problem=problem)


#: The leak kinds of one DMA are one problem; so are the kinds about one device (a meter, a
#: pump and its drive): one visit fixes them.
LEAK_PROBLEM = "leak:{dma}"
DEVICE_PROBLEM = "device:{device}"


_T, _P, _S, _C = TicketType, Priority, Skill, SlaClass
DEFAULT_RULES: dict[AlertKind, TicketRule] = {
    AlertKind.NIGHT_FLOW: _rule(_T.LEAK, _P.HIGH, _S.PIPE, _C.ORDINARY, LEAK_PROBLEM),
    AlertKind.BURST: _rule(_T.LEAK, _P.URGENT, _S.PIPE, _C.MAJOR, LEAK_PROBLEM),
    # Chronic losses without a leak signal: a survey of the DMA, verified by its real
    # losses over the following days; a leak alert on the DMA turns it into a leak repair.
    AlertKind.WATER_BALANCE: _rule(_T.LEAK_SURVEY, _P.NORMAL, _S.PIPE, _C.MAJOR,
                                   LEAK_PROBLEM),
    AlertKind.CUSTOMER_LEAK: _rule(_T.METER, _P.NORMAL, _S.METER, _C.MINOR),
    # Shortages are handled by the emergency plans (api/emergency), not by a ticket.
    AlertKind.SHORTAGE: TicketRule(create=False),
    AlertKind.QUALITY_LIMIT: _rule(_T.WATER_QUALITY, _P.URGENT, _S.WATER_QUALITY, _C.MINOR),
    AlertKind.QUALITY_EVENT: _rule(_T.WATER_QUALITY, _P.NORMAL, _S.WATER_QUALITY,
                                   _C.ORDINARY),
    AlertKind.SENSOR_FAULT: _rule(_T.WATER_QUALITY, _P.LOW, _S.WATER_QUALITY, _C.ORDINARY),
    AlertKind.DEVICE_SILENT: _rule(_T.OFFLINE_DEVICE, _P.NORMAL, _S.METER, _C.ORDINARY,
                                   DEVICE_PROBLEM),
    AlertKind.GATEWAY_SILENT: _rule(_T.OFFLINE_DEVICE, _P.HIGH, _S.PUMP_ELECTRICAL,
                                    _C.ORDINARY),
    AlertKind.LOW_BATTERY: _rule(_T.METER, _P.LOW, _S.METER, _C.MINOR,
                                 DEVICE_PROBLEM),
    AlertKind.VALVE_CLOSED: _rule(_T.VALVE, _P.HIGH, _S.METER, _C.MINOR,
                                  DEVICE_PROBLEM),
    AlertKind.TAMPER: _rule(_T.METER, _P.NORMAL, _S.METER, _C.ORDINARY,
                            DEVICE_PROBLEM),
    AlertKind.REVERSE_FLOW: _rule(_T.METER, _P.NORMAL, _S.METER, _C.ORDINARY,
                                  DEVICE_PROBLEM),
    AlertKind.PUMP_DRY_RUN: _rule(_T.PUMP, _P.URGENT, _S.PUMP_ELECTRICAL, _C.MAJOR,
                                  DEVICE_PROBLEM),
    AlertKind.PUMP_OVERCURRENT: _rule(_T.PUMP, _P.HIGH, _S.PUMP_ELECTRICAL, _C.ORDINARY,
                                      DEVICE_PROBLEM),
    AlertKind.PUMP_CYCLING: _rule(_T.PUMP, _P.NORMAL, _S.PUMP_ELECTRICAL, _C.ORDINARY,
                                  DEVICE_PROBLEM),
    AlertKind.PUMP_FAULT: _rule(_T.PUMP, _P.HIGH, _S.PUMP_ELECTRICAL, _C.ORDINARY,
                                DEVICE_PROBLEM),
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


def problem_key(rule: TicketRule, alert: Alert) -> str:
    """The problem ``alert`` is about, by ``rule.problem``; the alert key when the template
    names a place the alert does not carry (or the key would be too long)."""
    values: dict[str, str | None] = {name: getattr(alert.place, name) for name in PLACE_FIELDS}
    values["key"] = alert.key
    values["subject"] = alert.key.split(":", 1)[1]
    names = re.findall(r"\{([a-z]+)\}", rule.problem)
    if any(not values[name] for name in names):
        return alert.key
    key = re.sub(r"\{([a-z]+)\}", lambda match: str(values[match.group(1)]), rule.problem)
    return key if len(key) <= 200 else alert.key
