"""Scheduling through the real app on SQLite and PostgreSQL: skills, zones, pinned work,
the audit trail, crews' routes and positions, and when the loop re-plans."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.auth.models import Role
from api.auth.security import SYSTEM
from api.crews.models import Crew
from api.planning import plan_routes
from api.scheduling import service
from api.scheduling.loop import Replanner
from api.scheduling.problem import build_problem
from api.tickets.models import Ticket, TicketStatus
from tests.api.conftest import UserFactory
from tests.api.helpers import move
from tests.api.scheduling.conftest import TEST_CONFIG, CrewFactory, TicketFactory

pytestmark = pytest.mark.usefixtures("county")


def schedule(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post("/api/v1/schedule", headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ticket(client: TestClient, headers: dict[str, str], ticket_id: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/tickets/{ticket_id}", headers=headers).json()
    return body


def test_tickets_go_to_crews_with_the_skill_and_the_zone(
        client: TestClient, dispatcher: dict[str, str], add_crew: CrewFactory,
        open_ticket: TicketFactory) -> None:
    pipes = add_crew("pipes", ["pipe"])
    meters = add_crew("meters", ["meter"], zones=["t01"])
    leak = open_ticket("v001", "pipe", "leak")
    meter = open_ticket("v002", "meter", "meter")
    far_meter = open_ticket("v003", "meter", "meter")  # township t02: no meter crew covers it

    result = schedule(client, dispatcher)

    placed = {a["ticket_id"]: a for a in result["assignments"]}
    assert placed[leak]["crew_id"] == pipes.id and placed[meter]["crew_id"] == meters.id
    assert [(u["ticket_id"], u["reason"]) for u in result["unassigned"]] == \
        [(far_meter, "outside_zones")]
    for ticket_id, crew in ((leak, pipes), (meter, meters)):
        body = ticket(client, dispatcher, ticket_id)
        assert (body["status"], body["crew_id"], body["route_position"]) == \
            ("scheduled", crew.id, 0)
        assert body["scheduled_for"] is not None
    assert ticket(client, dispatcher, far_meter)["status"] == "open"


def test_scheduling_is_audited_with_who_asked_and_the_planned_stop(
        client: TestClient, dispatcher: dict[str, str], add_crew: CrewFactory,
        open_ticket: TicketFactory) -> None:
    crew = add_crew("pipes", ["pipe"])
    leak = open_ticket("v001", "pipe", "leak")
    schedule(client, dispatcher)
    history = client.get(f"/api/v1/tickets/{leak}/history", headers=dispatcher).json()
    entry = history[0]
    assert (entry["actor"], entry["action"]) == ("user:dora", "ticket.transition")
    assert entry["changes"] == {"from": "open", "to": "scheduled", "crew_id": crew.id}
    assert entry["reason"].startswith(f"planner: stop 1 of crew {crew.id}, ETA ")

    again = schedule(client, dispatcher)  # nothing changed: nothing written
    assert again["changed"] == 0
    assert len(client.get(f"/api/v1/tickets/{leak}/history", headers=dispatcher).json()) == \
        len(history)


def test_work_in_progress_stays_first_on_its_crew(
        client: TestClient, dispatcher: dict[str, str], add_crew: CrewFactory,
        open_ticket: TicketFactory) -> None:
    near = add_crew("near", ["pipe"], home=(39.06, 112.47))
    far = add_crew("far", ["pipe"], home=(39.5, 113.0))
    started = open_ticket("v001", "pipe", "leak")
    assert move(client, dispatcher, started, "scheduled", crew_id=far.id).status_code == 200
    assert move(client, dispatcher, started, "in_progress").status_code == 200
    waiting = open_ticket("v002", "pipe", "leak")

    result = schedule(client, dispatcher)

    placed = {a["ticket_id"]: a for a in result["assignments"]}
    assert placed[started] | {"eta": None, "finish": None, "late_minutes": 0} == {
        "ticket_id": started, "crew_id": far.id, "route_position": 0, "pinned": True,
        "eta": None, "finish": None, "late_minutes": 0}
    assert placed[waiting]["crew_id"] == near.id  # the near crew is free and closer
    body = ticket(client, dispatcher, started)
    assert (body["status"], body["crew_id"]) == ("in_progress", far.id)


def test_a_ticket_that_changes_while_the_planner_runs_is_left_alone(
        client: TestClient, dispatcher: dict[str, str], add_crew: CrewFactory,
        open_ticket: TicketFactory, db_session: Session) -> None:
    crew = add_crew("pipes", ["pipe"])
    first = open_ticket("v001", "pipe", "leak")
    assert move(client, dispatcher, first, "scheduled", crew_id=crew.id).status_code == 200
    snapshot = build_problem(db_session=db_session, now=service.utcnow(), config=TEST_CONFIG)
    plan = plan_routes(snapshot.problem, options=service.planner_options(TEST_CONFIG))
    assert move(client, dispatcher, first, "en_route").status_code == 200  # meanwhile
    db_session.expire_all()
    result = service.apply_plan(db_session=db_session, snapshot=snapshot, plan=plan,
                                actor=SYSTEM)
    assert result.stale == [first]
    assert ticket(client, dispatcher, first)["status"] == "en_route"


def test_unplaceable_tickets_are_reported_not_planned(
        client: TestClient, dispatcher: dict[str, str], add_crew: CrewFactory,
        open_ticket: TicketFactory, db_session: Session) -> None:
    add_crew("pipes", ["pipe"])
    lost = open_ticket("v001", "pipe", "leak")
    row = db_session.get(Ticket, lost)
    assert row is not None
    row.village_id = None  # an alert naming no known place
    db_session.commit()
    result = schedule(client, dispatcher)
    assert [(s["ticket_id"], s["reason"]) for s in result["skipped"]] == \
        [(lost, "no_location")]


def test_only_dispatchers_plan_and_only_with_a_crew(
        client: TestClient, dispatcher: dict[str, str], viewer: dict[str, str]) -> None:
    refused = client.post("/api/v1/schedule", headers=viewer)
    assert refused.status_code == 403 and "dispatcher" in refused.json()["detail"]
    no_crew = client.post("/api/v1/schedule", headers=dispatcher)
    assert no_crew.status_code == 409 and "no active crew" in no_crew.json()["detail"]


def test_a_crew_member_reads_only_their_own_route(
        client: TestClient, dispatcher: dict[str, str], make_user: UserFactory,
        add_crew: CrewFactory, open_ticket: TicketFactory) -> None:
    pipes = add_crew("pipes", ["pipe"])
    meters = add_crew("meters", ["meter"])
    first = open_ticket("v001", "pipe", "leak")
    second = open_ticket("v002", "pipe", "leak", reporter_name="Wang", reporter_phone="12345")
    schedule(client, dispatcher)
    member = make_user("li", Role.CREW_MEMBER, crew_id=pipes.id)

    route = client.get(f"/api/v1/crews/{pipes.id}/route", headers=member).json()

    assert [stop["ticket_id"] for stop in route["stops"]] in ([first, second], [second, first])
    stop = next(s for s in route["stops"] if s["ticket_id"] == second)
    assert (stop["village_id"], stop["contact_name"], stop["contact_phone"]) == \
        ("v002", "Wang", "12345")
    assert stop["latitude"] == 39.09657 and stop["eta_local"] and stop["status"] == "scheduled"
    other = client.get(f"/api/v1/crews/{meters.id}/route", headers=member)
    assert other.status_code == 404


def test_a_crew_reports_its_position_and_the_next_plan_starts_there(
        client: TestClient, make_user: UserFactory, add_crew: CrewFactory,
        db_session: Session) -> None:
    pipes = add_crew("pipes", ["pipe"])
    member = make_user("li", Role.CREW_MEMBER, crew_id=pipes.id)
    response = client.post(f"/api/v1/crews/{pipes.id}/position", headers=member,
                           json={"latitude": 39.1, "longitude": 112.4})
    assert response.status_code == 200, response.text
    assert (response.json()["reported_latitude"], response.json()["reported_longitude"]) == \
        (39.1, 112.4)
    problem = build_problem(db_session=db_session, now=service.utcnow(),
                            config=TEST_CONFIG).problem
    position = problem.crews[0].position
    assert position is not None and (position.latitude, position.longitude) == (39.1, 112.4)
    other = add_crew("others", ["meter"])
    refused = client.post(f"/api/v1/crews/{other.id}/position", headers=member,
                          json={"latitude": 39.1, "longitude": 112.4})
    assert refused.status_code == 404


def test_the_loop_replans_after_a_quiet_spell_and_not_for_its_own_writes(
        planning_app: FastAPI, add_crew: CrewFactory, open_ticket: TicketFactory,
        db_session: Session) -> None:
    clock = [0.0]
    config = TEST_CONFIG.model_copy(update={"replan_debounce_s": 30.0,
                                            "replan_max_age_s": 3600.0})
    loop = Replanner(planning_app.state.session_factory, config, clock=lambda: clock[0])
    crew: Crew = add_crew("pipes", ["pipe"])
    leak = open_ticket("v001", "pipe", "leak")

    assert not loop.tick()  # a change: wait for it to settle
    clock[0] = 31.0
    assert loop.tick()
    row = db_session.get(Ticket, leak)
    assert row is not None
    db_session.refresh(row)
    assert (row.status, row.crew_id) == (TicketStatus.SCHEDULED, crew.id)
    clock[0] = 100.0
    assert not loop.tick()  # its own writes are no reason to plan again

    open_ticket("v002", "pipe", "leak")  # a new ticket arrives
    assert not loop.tick()
    clock[0] = 131.0
    assert loop.tick()
    clock[0] = 131.0 + 3600.0
    assert loop.tick()  # ETAs follow the clock: re-planned after replan_max_age_s
