"""The tickets board's data: the sample's alert changes replayed through the ticket service
(intake, ticket rules, planner, crews' work) into the API's tables on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.tickets.models import ACTIVE_STATUSES
from api.tickets.rules import DEFAULT_RULES
from common.alerts import AlertStatus
from common.settings import ApiSettings
from dashboards.sample import Sample


def _tickets(connection: psycopg.Connection) -> list[dict[str, Any]]:
    cursor = connection.execute(
        "SELECT alert_keys, status, sla_class, crew_id, created_at, due_at, started_at, "
        "resolved_at FROM tickets")
    names = [column.name for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_alerts_with_a_ticket_rule_join_tickets_opened_at_the_pass_that_raised_them(
        tickets_db: psycopg.Connection, sample: Sample) -> None:
    first_open: dict[str, datetime] = {}
    for now, change in sample.changes():
        if DEFAULT_RULES[change.alert.kind].create:
            first_open.setdefault(change.alert.key, now)
    tickets = _tickets(tickets_db)
    assert sorted(key for t in tickets for key in t["alert_keys"]) == sorted(first_open)
    settings = ApiSettings()
    sla_hours = {"minor": settings.sla_minor_h, "ordinary": settings.sla_ordinary_h,
                 "major": settings.sla_major_h}
    for ticket in tickets:
        opened = min(first_open[key] for key in ticket["alert_keys"])
        assert ticket["created_at"] == opened, ticket
        assert opened < ticket["due_at"] <= opened + timedelta(hours=max(sla_hours.values()))
        assert any(ticket["due_at"] == first_open[key] + timedelta(
            hours=sla_hours[ticket["sla_class"]]) for key in ticket["alert_keys"]), ticket


def test_crews_resolve_only_what_the_analysis_no_longer_finds_and_the_rest_stays_active(
        tickets_db: psycopg.Connection, sample: Sample) -> None:
    history: dict[str, list[tuple[datetime, AlertStatus]]] = {}
    for now, change in sample.changes():
        history.setdefault(change.alert.key, []).append((now, change.alert.status))

    def status_at(key: str, moment: datetime) -> AlertStatus | None:
        """The alert's state at ``moment``; None before it was first raised."""
        known = [status for when, status in history[key] if when <= moment]
        return known[-1] if known else None

    tickets = _tickets(tickets_db)
    active = {status.value for status in ACTIVE_STATUSES}
    statuses = {ticket["status"] for ticket in tickets}
    assert "resolved" in statuses and statuses & active
    for ticket in tickets:
        if ticket["status"] == "resolved":
            # Every alert of the problem raised by then had cleared when the crew resolved
            # it. The problem may come back later (a new alert joins, or one reopens): the
            # ticket then waits for its telemetry verification to reopen it.
            assert all(status_at(key, ticket["resolved_at"]) in (AlertStatus.RESOLVED, None)
                       for key in ticket["alert_keys"]), ticket
            assert ticket["crew_id"] is not None and ticket["started_at"] is not None
            assert ticket["started_at"] <= ticket["resolved_at"] <= sample.end
        elif any(status_at(key, sample.end) is AlertStatus.OPEN for key in ticket["alert_keys"]):
            assert ticket["status"] in active, ticket
