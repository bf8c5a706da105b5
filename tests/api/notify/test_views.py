"""The notification routes on the real app: list, acknowledge, and who may."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.auth.models import Role
from api.crews.models import Crew
from api.notify import service
from tests.api.emergency.ops_app import ops_client, sign_in


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with ops_client(tmp_path) as test_client:
        yield test_client


def seed(client: TestClient) -> tuple[int, int, int]:
    """Two crews and one notification for the first: (crew 1, crew 2, notification)."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        crews = [Crew(name=name, skills=["pipe"], zones=[], home_latitude=39.0,
                      home_longitude=112.0) for name in ("Crew 1", "Crew 2")]
        session.add_all(crews)
        session.commit()
        notification = service.raise_notice(db_session=session, subject="ticket:1",
                                            title="Leak", text="night flow up",
                                            crew_id=crews[0].id)
        return crews[0].id, crews[1].id, notification.id


def test_crew_members_see_and_acknowledge_only_their_crews(client: TestClient) -> None:
    crew_1, crew_2, notification_id = seed(client)
    own = sign_in(client, "zhao", Role.CREW_MEMBER, crew_id=crew_1)
    other = sign_in(client, "qian", Role.CREW_MEMBER, crew_id=crew_2)
    assert [n["id"] for n in client.get("/api/v1/notifications", headers=own).json()] == [
        notification_id]
    assert client.get("/api/v1/notifications", headers=other).json() == []
    url = f"/api/v1/notifications/{notification_id}/acknowledge"
    assert client.post(url, headers=other).status_code == 403
    acknowledged = client.post(url, headers=own)
    assert acknowledged.status_code == 200
    assert acknowledged.json()["acknowledged_by"] == "user:zhao"
    assert client.get("/api/v1/notifications", params={"open": True},
                      headers=own).json() == []


def test_viewers_read_but_do_not_acknowledge(client: TestClient) -> None:
    _, _, notification_id = seed(client)
    viewer = sign_in(client, "vic", Role.VIEWER)
    listed = client.get("/api/v1/notifications", params={"subject": "ticket:1"},
                        headers=viewer)
    assert listed.status_code == 200 and len(listed.json()) == 1
    url = f"/api/v1/notifications/{notification_id}/acknowledge"
    assert client.post(url, headers=viewer).status_code == 403
    dispatcher = sign_in(client, "dora", Role.DISPATCHER)
    assert client.post("/api/v1/notifications/999/acknowledge",
                       headers=dispatcher).status_code == 404
