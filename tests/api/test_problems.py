"""One ticket per problem: alerts of one problem join one ticket (escalating it, audited);
a problem that comes back reopens its recently verified ticket or opens a new one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.alerts import service as alerts
from api.auth.models import Role
from api.auth.security import SYSTEM, Principal
from api.crews.models import Crew
from api.tickets import service as tickets
from api.tickets.models import Priority, SlaClass, Ticket, TicketSource, TicketStatus, TicketType
from api.tickets.rules import DEFAULT_RULES, TicketRule, load_rules, problem_key
from api.tickets.schemas import TicketTransition
from common.alerts import Alert, AlertKind, AlertStatus, Place, Severity
from common.settings import ApiSettings
from tests.api.helpers import T0, alert, import_county, move, put_alert

DMA = Place(village="v001", dma="dma-v001")
METER = Place(village="v001", household="v001-h0001", device="m-v001-h0001")
DISPATCHER = Principal(name="dora", role=Role.DISPATCHER)


def _ticket(client: TestClient, headers: dict[str, str], ticket_id: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/tickets/{ticket_id}", headers=headers).json()
    return body


def _resolve(client: TestClient, headers: dict[str, str], ticket_id: int, crew: Crew) -> None:
    for step, fields in (("scheduled", {"crew_id": crew.id}), ("in_progress", {}),
                         ("resolved", {"note": "repaired"})):
        assert move(client, headers, ticket_id, step, **fields).status_code == 200


def test_the_leak_alerts_of_one_dma_are_one_ticket(client: TestClient,
                                                   admin: dict[str, str]) -> None:
    import_county(client, admin)
    night = put_alert(client, admin, alert(AlertKind.NIGHT_FLOW, "dma-v001", Severity.MEDIUM,
                                           place=DMA)).json()
    burst = put_alert(client, admin, alert(AlertKind.BURST, "dma-v001", Severity.HIGH,
                                           place=DMA, updated_at=T0 + timedelta(hours=1))).json()
    balance = put_alert(client, admin, alert(AlertKind.WATER_BALANCE, "dma-v001", Severity.LOW,
                                             place=DMA)).json()
    assert night["ticket_id"] == burst["ticket_id"] == balance["ticket_id"] is not None
    listed = client.get("/api/v1/tickets", headers=admin).json()
    assert [t["id"] for t in listed] == [night["ticket_id"]]
    ticket = listed[0]
    assert ticket["problem_key"] == "leak:dma-v001"
    assert ticket["alert_keys"] == ["night_flow:dma-v001", "burst:dma-v001",
                                    "water_balance:dma-v001"]
    assert (ticket["type"], ticket["priority"]) == ("leak", "urgent")  # the burst's rule
    history = client.get(f"/api/v1/tickets/{ticket['id']}/history", headers=admin).json()
    joins = [e for e in reversed(history) if e["action"] == "ticket.update"]
    assert [e["reason"] for e in joins] == ["alert burst:dma-v001 joined the ticket",
                                            "alert water_balance:dma-v001 joined the ticket"]
    assert joins[0]["changes"]["priority"] == "urgent"
    assert "priority" not in joins[1]["changes"]  # a lesser alert escalates nothing


def test_a_leak_survey_becomes_a_leak_repair_when_a_leak_alert_joins(
        client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    survey_id = put_alert(client, admin, alert(AlertKind.WATER_BALANCE, "dma-v001",
                                               Severity.LOW, place=DMA)).json()["ticket_id"]
    survey = _ticket(client, admin, survey_id)
    assert (survey["type"], survey["priority"], survey["sla_class"]) == \
        ("leak_survey", "normal", "major")
    put_alert(client, admin, alert(AlertKind.NIGHT_FLOW, "dma-v001", Severity.MEDIUM,
                                   place=DMA, title="Leak in dma-v001"))
    repair = _ticket(client, admin, survey_id)
    assert (repair["type"], repair["priority"], repair["sla_class"]) == \
        ("leak", "high", "ordinary")
    assert repair["alert_key"] == "night_flow:dma-v001" and repair["title"] == "Leak in dma-v001"
    assert repair["due_at"] < survey["due_at"]  # 24 h from now beats 48 h from before
    change = client.get(f"/api/v1/tickets/{survey_id}/history", headers=admin).json()[0]
    assert change["changes"]["type"] == "leak" and change["actor"] == "user:root"


def test_a_meters_alerts_are_one_visit_and_other_places_stay_apart(
        client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    valve = put_alert(client, admin, alert(AlertKind.VALVE_CLOSED, "v001-h0001",
                                           place=METER)).json()["ticket_id"]
    battery = put_alert(client, admin, alert(AlertKind.LOW_BATTERY, "v001-h0001",
                                             Severity.LOW, place=METER)).json()["ticket_id"]
    other_dma = put_alert(client, admin, alert(AlertKind.NIGHT_FLOW, "dma-v002", place=Place(
        village="v002", dma="dma-v002"))).json()["ticket_id"]
    assert valve == battery != other_dma
    ticket = _ticket(client, admin, valve)
    assert (ticket["problem_key"], ticket["type"]) == ("device:m-v001-h0001", "valve")


def test_a_problem_back_soon_after_verification_reopens_its_ticket(
        client: TestClient, admin: dict[str, str], make_crew: Callable[..., Crew]) -> None:
    import_county(client, admin)
    ticket_id = put_alert(client, admin, alert(place=DMA)).json()["ticket_id"]
    _resolve(client, admin, ticket_id, make_crew("north"))
    assert move(client, admin, ticket_id, "verified", reason="night flow normal").status_code \
        == 200
    put_alert(client, admin, alert(place=DMA, status=AlertStatus.RESOLVED,
                                   resolved_at=T0 + timedelta(days=1),
                                   updated_at=T0 + timedelta(days=1)))
    back = put_alert(client, admin, alert(AlertKind.BURST, "dma-v001", place=DMA,
                                          updated_at=T0 + timedelta(days=2))).json()
    assert back["ticket_id"] == ticket_id
    ticket = _ticket(client, admin, ticket_id)
    assert (ticket["status"], ticket["reopen_count"]) == ("reopened", 1)
    assert ticket["alert_keys"] == ["night_flow:dma-v001", "burst:dma-v001"]
    reopening = [e for e in client.get(f"/api/v1/tickets/{ticket_id}/history",
                                       headers=admin).json()
                 if e["changes"].get("to") == "reopened"]
    assert reopening[0]["actor"] == "user:root"  # who sent the alert
    assert "came back within 30 days" in reopening[0]["reason"]


def _receive(db_session: Session, body: Alert, settings: ApiSettings) -> Ticket | None:
    return alerts.intake(db_session=db_session, alert=body, actor=SYSTEM, rules=DEFAULT_RULES,
                         settings=settings).ticket


def _verified_by_hand(db_session: Session, ticket: Ticket, crew: Crew) -> None:
    for to, fields in ((TicketStatus.SCHEDULED, {"crew_id": crew.id}),
                       (TicketStatus.IN_PROGRESS, {}),
                       (TicketStatus.RESOLVED, {"note": "fixed"}),
                       (TicketStatus.VERIFIED, {"reason": "checked on site"})):
        tickets.transition(db_session=db_session, ticket=ticket, actor=DISPATCHER,
                           move_in=TicketTransition(to=to, **fields))


def test_a_problem_back_after_the_window_or_after_a_cancellation_opens_a_new_ticket(
        client: TestClient, admin: dict[str, str], db_session: Session,
        make_crew: Callable[..., Crew]) -> None:
    import_county(client, admin)
    no_window = ApiSettings(reopen_within_days=0)
    first = _receive(db_session, alert(place=DMA), no_window)
    assert first is not None
    _verified_by_hand(db_session, first, make_crew("north"))
    _receive(db_session, alert(place=DMA, status=AlertStatus.RESOLVED,
                               resolved_at=T0 + timedelta(days=1),
                               updated_at=T0 + timedelta(days=1)), no_window)
    second = _receive(db_session, alert(place=DMA, updated_at=T0 + timedelta(days=40)),
                      no_window)
    assert second is not None and second.id != first.id
    assert (second.status, second.problem_key) == (TicketStatus.OPEN, "leak:dma-v001")
    assert first.status is TicketStatus.VERIFIED
    # a cancelled ticket (a false alarm) is never reopened by its problem
    tickets.transition(db_session=db_session, ticket=second, actor=DISPATCHER,
                       move_in=TicketTransition(to=TicketStatus.CANCELLED, reason="false alarm"))
    # new evidence on the still-open alert of a cancelled ticket: nothing new
    assert _receive(db_session, alert(place=DMA, updated_at=T0 + timedelta(days=41),
                                      evidence={"night_flow_m3h": 3.0}), ApiSettings()) == second
    _receive(db_session, alert(place=DMA, status=AlertStatus.RESOLVED,
                               resolved_at=T0 + timedelta(days=42),
                               updated_at=T0 + timedelta(days=42)), ApiSettings())
    third = _receive(db_session, alert(place=DMA, updated_at=T0 + timedelta(days=43)),
                     no_window)
    assert third is not None and third.id not in (first.id, second.id)
    statuses = db_session.execute(select(Ticket.problem_key, Ticket.status).order_by(Ticket.id))
    assert [tuple(row) for row in statuses] == [
        ("leak:dma-v001", TicketStatus.VERIFIED), ("leak:dma-v001", TicketStatus.CANCELLED),
        ("leak:dma-v001", TicketStatus.OPEN)]


def test_only_one_current_ticket_per_problem_even_when_two_alerts_race(
        client: TestClient, admin: dict[str, str], db_session: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import_county(client, admin)
    first = _receive(db_session, alert(place=DMA), ApiSettings())
    assert first is not None
    # Another worker's intake that looked before the first committed sees no ticket ...
    real_lookup = tickets.current_for_problem
    looks: list[str] = []

    def stale_then_real(*, db_session: Session, problem: str) -> Ticket | None:
        looks.append(problem)
        return None if len(looks) == 1 else real_lookup(db_session=db_session, problem=problem)

    monkeypatch.setattr(tickets, "current_for_problem", stale_then_real)
    # ... tries to open a second, is refused by the index, replays and joins the first.
    joined = _receive(db_session, alert(AlertKind.BURST, "dma-v001", place=DMA),
                      ApiSettings())
    assert joined is not None and joined.id == first.id and len(looks) == 2
    assert joined.alert_keys == ["night_flow:dma-v001", "burst:dma-v001"]
    duplicate = Ticket(source=TicketSource.ALERT, type=TicketType.LEAK, title="again",
                       priority=Priority.HIGH, required_skill="pipe",
                       sla_class=SlaClass.ORDINARY, status=TicketStatus.OPEN,
                       problem_key="leak:dma-v001", due_at=T0)
    db_session.add(duplicate)
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()


def test_problem_templates_come_from_the_rules_and_fall_back_to_the_alert_key(
        tmp_path: Any) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  tamper: {problem: 'tamper:{household}'}\n"
                          "  night_flow: {problem: '{key}', ticket_type: leak}\n")
    rules = load_rules(rules_file)
    tamper = alert(AlertKind.TAMPER, "v001-h0001", place=METER)
    assert problem_key(rules[AlertKind.TAMPER], tamper) == "tamper:v001-h0001"
    assert problem_key(rules[AlertKind.NIGHT_FLOW], alert(place=DMA)) == "night_flow:dma-v001"
    assert problem_key(DEFAULT_RULES[AlertKind.BURST],
                       alert(AlertKind.BURST, "v001", place=Place(village="v001"))) == \
        "burst:v001"  # no DMA in the place: the alert is its own problem
    with pytest.raises(ValueError, match="unknown placeholder"):
        TicketRule(problem="leak:{pipe}")
