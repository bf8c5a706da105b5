"""The crew page over HTTP on SQLite and PostgreSQL: sign-in, the route (only the crew's own
work, with place, evidence and contact), moves with their refusals, forged forms."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.auth.models import Role
from api.crews.models import Crew
from common.alerts import Place
from tests.api.conftest import PASSWORD, UserFactory
from tests.api.helpers import alert, move, put_alert
from tests.api.scheduling.conftest import CrewFactory, TicketFactory

pytestmark = pytest.mark.usefixtures("county")


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/crew/login", data={"username": username, "password": password},
                           follow_redirects=True)
    assert response.status_code == 200, response.text
    return response.text


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "no form on the page"
    return found.group(1)


@pytest.fixture
def crews(add_crew: CrewFactory) -> tuple[Crew, Crew]:
    return add_crew("north", ["pipe", "meter"]), add_crew("south", ["pipe"])


def test_a_crew_member_signs_in_and_sees_only_their_crews_route(
        client: TestClient, admin: dict[str, str], dispatcher: dict[str, str],
        make_user: UserFactory, crews: tuple[Crew, Crew], open_ticket: TicketFactory) -> None:
    north, south = crews
    make_user("li", Role.CREW_MEMBER, crew_id=north.id)
    body = put_alert(client, admin, alert(place=Place(village="v001", dma="dma-v001")))
    leak: int = body.json()["ticket_id"]
    theirs = open_ticket("v002", "pipe", "leak")
    assert move(client, dispatcher, leak, "scheduled", crew_id=north.id).status_code == 200
    assert move(client, dispatcher, theirs, "scheduled", crew_id=south.id).status_code == 200

    page = sign_in(client, "li")

    assert f'id="t{leak}"' in page and f'id="t{theirs}"' not in page
    assert "dma-v001" in page and "night flow m3h" in page and "2.5" in page  # evidence
    assert 'href="geo:39.06063,112.46751' in page
    assert f'id="en_route-{leak}"' in page and f'id="in_progress-{leak}"' in page


def test_people_who_are_not_crew_members_cannot_use_the_page(
        client: TestClient, make_user: UserFactory) -> None:
    make_user("dora2", Role.DISPATCHER)
    wrong = client.post("/crew/login", data={"username": "dora2", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    dispatcher = client.post("/crew/login", data={"username": "dora2", "password": PASSWORD})
    assert dispatcher.status_code == 403 and "for crew members" in dispatcher.text
    anonymous = client.get("/crew", follow_redirects=False)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/crew/login")


def test_moves_follow_the_lifecycle_and_resolving_needs_a_note(
        client: TestClient, dispatcher: dict[str, str], make_user: UserFactory,
        crews: tuple[Crew, Crew], open_ticket: TicketFactory, db_session: Session) -> None:
    north, _ = crews
    make_user("li", Role.CREW_MEMBER, crew_id=north.id)
    job = open_ticket("v002", "pipe", "leak")
    assert move(client, dispatcher, job, "scheduled", crew_id=north.id).status_code == 200
    token = csrf_of(sign_in(client, "li"))

    early = client.post(f"/crew/tickets/{job}", data={"to": "resolved", "csrf": token,
                                                      "note": "fixed"})
    assert early.status_code == 409 and "cannot go to resolved" in early.text
    started = client.post(f"/crew/tickets/{job}", data={"to": "in_progress", "csrf": token})
    assert started.status_code == 200 and f"Ticket {job} is now in progress." in started.text
    silent = client.post(f"/crew/tickets/{job}", data={"to": "resolved", "csrf": token,
                                                       "note": "  "})
    assert silent.status_code == 422 and "needs a note" in silent.text
    done = client.post(f"/crew/tickets/{job}", data={"to": "resolved", "csrf": token,
                                                     "note": "replaced 2 m of pipe"})
    assert done.status_code == 200 and f'id="t{job}"' not in done.text

    ticket = client.get(f"/api/v1/tickets/{job}", headers=dispatcher).json()
    assert (ticket["status"], ticket["resolution_note"]) == ("resolved", "replaced 2 m of pipe")
    history = client.get(f"/api/v1/tickets/{job}/history", headers=dispatcher).json()
    assert history[0]["actor"] == "user:li" and history[0]["changes"]["to"] == "resolved"
    crew = client.get(f"/api/v1/crews/{north.id}", headers=dispatcher).json()
    assert crew["reported_latitude"] == pytest.approx(39.09657)  # on site at v002


def test_forged_forms_and_other_crews_tickets_are_refused(
        client: TestClient, dispatcher: dict[str, str], make_user: UserFactory,
        crews: tuple[Crew, Crew], open_ticket: TicketFactory) -> None:
    north, south = crews
    make_user("li", Role.CREW_MEMBER, crew_id=north.id)
    other = open_ticket("v002", "pipe", "leak")
    assert move(client, dispatcher, other, "scheduled", crew_id=south.id).status_code == 200
    token = csrf_of(sign_in(client, "li"))

    forged = client.post(f"/crew/tickets/{other}", data={"to": "en_route", "csrf": "0" * 32})
    assert forged.status_code == 403 and "expired" in forged.text
    hidden = client.post(f"/crew/tickets/{other}", data={"to": "en_route", "csrf": token})
    assert hidden.status_code == 404 and f"no ticket {other}" in hidden.text
    cancel = client.post(f"/crew/tickets/{other}", data={"to": "cancelled", "csrf": token})
    assert cancel.status_code == 403
    ticket = client.get(f"/api/v1/tickets/{other}", headers=dispatcher).json()
    assert ticket["status"] == "scheduled"


def test_the_stylesheet_is_served(client: TestClient, planning_app: FastAPI) -> None:
    response = client.get("/crew/static/crew.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")
