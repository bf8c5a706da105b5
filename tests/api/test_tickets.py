"""The ticket lifecycle: every move checked, every wrong move or role refused, all audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.auth.models import Role
from api.crews.models import Crew
from tests.api.conftest import UserFactory
from tests.api.helpers import alert, import_county, move, put_alert


@pytest.fixture
def leak_ticket(client: TestClient, admin: dict[str, str]) -> int:
    import_county(client, admin)
    ticket_id: int = put_alert(client, admin, alert()).json()["ticket_id"]
    return ticket_id


@pytest.fixture
def crews(make_crew: Callable[..., Crew]) -> tuple[Crew, Crew]:
    return make_crew("north", ["pipe", "meter"]), make_crew("south", ["pipe"])


def test_full_lifecycle_by_dispatcher_and_crew(
        client: TestClient, leak_ticket: int, crews: tuple[Crew, Crew],
        dispatcher: dict[str, str], make_user: UserFactory) -> None:
    north, _ = crews
    fitter = make_user("fitter", Role.CREW_MEMBER, crew_id=north.id)
    scheduled = move(client, dispatcher, leak_ticket, "scheduled", crew_id=north.id,
                     route_position=0)
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["allowed_next"] == ["scheduled", "en_route", "in_progress",
                                                "cancelled"]
    for step in ("en_route", "in_progress"):
        assert move(client, fitter, leak_ticket, step).status_code == 200
    resolved = move(client, fitter, leak_ticket, "resolved",
                    note="replaced 2 m of branch pipe").json()
    assert resolved["status"] == "resolved" and resolved["resolution_note"]
    history = client.get(f"/api/v1/tickets/{leak_ticket}/history", headers=dispatcher).json()
    moves = [(e["actor"], e["changes"].get("from"), e["changes"].get("to"))
             for e in reversed(history)]
    assert moves == [
        ("user:root", None, None),  # created from the alert, sent by the admin
        ("user:dora", "open", "scheduled"),
        ("user:fitter", "scheduled", "en_route"),
        ("user:fitter", "en_route", "in_progress"),
        ("user:fitter", "in_progress", "resolved"),
    ]
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in history)


def test_a_move_the_status_does_not_allow_is_a_409(client: TestClient, leak_ticket: int,
                                                   dispatcher: dict[str, str]) -> None:
    response = move(client, dispatcher, leak_ticket, "resolved", note="x")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert body["detail"] == (f"ticket {leak_ticket} is open: it cannot go to resolved "
                              "(allowed next: scheduled, cancelled)")


def test_back_to_open_is_never_a_move(client: TestClient, leak_ticket: int,
                                      dispatcher: dict[str, str]) -> None:
    assert move(client, dispatcher, leak_ticket, "open").status_code == 409


def test_a_viewer_may_not_move_tickets(client: TestClient, leak_ticket: int,
                                       crews: tuple[Crew, Crew],
                                       viewer: dict[str, str]) -> None:
    response = move(client, viewer, leak_ticket, "scheduled", crew_id=crews[0].id)
    assert response.status_code == 403
    assert "role viewer may not move a ticket to scheduled" in response.json()["detail"]


def test_a_crew_member_may_not_schedule(client: TestClient, leak_ticket: int,
                                        crews: tuple[Crew, Crew], dispatcher: dict[str, str],
                                        make_user: UserFactory) -> None:
    move(client, dispatcher, leak_ticket, "scheduled", crew_id=crews[0].id)
    fitter = make_user("fitter", Role.CREW_MEMBER, crew_id=crews[0].id)
    response = move(client, fitter, leak_ticket, "scheduled", crew_id=crews[1].id)
    assert response.status_code == 403
    assert "needs one of: admin, dispatcher" in response.json()["detail"]


def test_a_crew_member_sees_and_moves_only_their_crews_tickets(
        client: TestClient, leak_ticket: int, crews: tuple[Crew, Crew],
        dispatcher: dict[str, str], make_user: UserFactory) -> None:
    north, south = crews
    move(client, dispatcher, leak_ticket, "scheduled", crew_id=north.id)
    other = make_user("other", Role.CREW_MEMBER, crew_id=south.id)
    assert client.get("/api/v1/tickets", headers=other).json() == []
    assert client.get(f"/api/v1/tickets/{leak_ticket}", headers=other).status_code == 404
    assert move(client, other, leak_ticket, "en_route").status_code == 404
    own = make_user("own", Role.CREW_MEMBER, crew_id=north.id)
    assert [t["id"] for t in client.get("/api/v1/tickets", headers=own).json()] == [
        leak_ticket]


def test_scheduling_needs_a_crew_with_the_skill(client: TestClient, leak_ticket: int,
                                                make_crew: Callable[..., Crew],
                                                dispatcher: dict[str, str]) -> None:
    quality = make_crew("lab", ["water_quality"])
    assert move(client, dispatcher, leak_ticket, "scheduled").status_code == 422
    response = move(client, dispatcher, leak_ticket, "scheduled", crew_id=quality.id)
    assert response.status_code == 422
    assert "lacks the skill 'pipe'" in response.json()["detail"]


def test_resolving_needs_a_note_and_cancelling_a_reason(
        client: TestClient, leak_ticket: int, crews: tuple[Crew, Crew],
        dispatcher: dict[str, str]) -> None:
    move(client, dispatcher, leak_ticket, "scheduled", crew_id=crews[0].id)
    move(client, dispatcher, leak_ticket, "in_progress")
    assert move(client, dispatcher, leak_ticket, "resolved").status_code == 422
    no_reason = move(client, dispatcher, leak_ticket, "verified")
    assert no_reason.status_code == 409  # in progress: not resolved yet
    assert move(client, dispatcher, leak_ticket, "cancelled").status_code == 409


def test_cancel_needs_a_reason(client: TestClient, leak_ticket: int,
                               dispatcher: dict[str, str]) -> None:
    assert move(client, dispatcher, leak_ticket, "cancelled").status_code == 422
    cancelled = move(client, dispatcher, leak_ticket, "cancelled", reason="duplicate")
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["closed_at"]


def test_manual_verify_and_reopen_by_dispatcher(client: TestClient, leak_ticket: int,
                                                crews: tuple[Crew, Crew],
                                                dispatcher: dict[str, str]) -> None:
    for step, fields in (("scheduled", {"crew_id": crews[0].id}), ("in_progress", {}),
                         ("resolved", {"note": "fixed"})):
        move(client, dispatcher, leak_ticket, step, **fields)
    reopened = move(client, dispatcher, leak_ticket, "reopened", reason="leak heard again")
    assert reopened.json()["reopen_count"] == 1
    again = move(client, dispatcher, leak_ticket, "scheduled", crew_id=crews[1].id)
    assert again.json()["crew_id"] == crews[1].id


def test_hotline_complaint_ticket_gets_its_sla_deadline(
        client: TestClient, admin: dict[str, str], dispatcher: dict[str, str]) -> None:
    import_county(client, admin)
    response = client.post("/api/v1/tickets", headers=dispatcher, json={
        "title": "no water since morning", "village_id": "v002", "sla_class": "minor",
        "reporter_name": "Wang", "reporter_phone": "12314"})
    assert response.status_code == 201, response.text
    ticket = response.json()
    hours = (datetime.fromisoformat(ticket["due_at"])
             - datetime.fromisoformat(ticket["created_at"])).total_seconds() / 3600
    assert ticket["source"] == "hotline" and hours == pytest.approx(12)


def test_a_viewer_may_not_open_tickets(client: TestClient, admin: dict[str, str],
                                       viewer: dict[str, str]) -> None:
    import_county(client, admin)
    response = client.post("/api/v1/tickets", headers=viewer,
                           json={"title": "x", "village_id": "v001"})
    assert response.status_code == 403


def test_dispatchers_then_the_crew_are_notified_until_resolved(
        client: TestClient, leak_ticket: int, crews: tuple[Crew, Crew],
        dispatcher: dict[str, str]) -> None:
    def open_notices() -> list[tuple[str, int | None]]:
        notices = client.get("/api/v1/notifications", headers=dispatcher,
                             params={"open": "true"}).json()
        return [(n["subject"], n["crew_id"]) for n in notices]

    subject = f"ticket:{leak_ticket}"
    assert open_notices() == [(subject, None)]
    move(client, dispatcher, leak_ticket, "scheduled", crew_id=crews[0].id)
    assert open_notices() == [(subject, crews[0].id)]
    move(client, dispatcher, leak_ticket, "in_progress")
    move(client, dispatcher, leak_ticket, "resolved", note="clamp fitted")
    assert open_notices() == []
