"""A planned county: the small register, a second township, crews of different skills."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.assets.models import Township, Village
from api.crews.models import Crew
from api.scheduling.config import SchedulingConfig
from tests.api.helpers import import_county

#: Machine-independent and quick: the search stops after a few improving solutions.
TEST_CONFIG = SchedulingConfig(time_limit_s=5, solution_limit=50)


@pytest.fixture
def planning_app(app: FastAPI) -> Iterator[FastAPI]:
    previous = getattr(app.state, "scheduling_config", None)
    app.state.scheduling_config = TEST_CONFIG
    yield app
    app.state.scheduling_config = previous


@pytest.fixture
def county(client: TestClient, admin: dict[str, str], db_session: Session,
           planning_app: FastAPI) -> None:
    """v001 and v002 in township t01; v003 moved to a new township t02."""
    import_county(client, admin)
    db_session.add(Township(id="t02", name="Second"))
    db_session.flush()
    village = db_session.get(Village, "v003")
    assert village is not None
    village.township_id = "t02"
    db_session.commit()


CrewFactory = Callable[..., Crew]


@pytest.fixture
def add_crew(db_session: Session) -> CrewFactory:
    def add(name: str, skills: list[str], zones: list[str] | None = None,
            home: tuple[float, float] = (39.06, 112.47)) -> Crew:
        crew = Crew(name=name, skills=skills, zones=zones or [], home_latitude=home[0],
                    home_longitude=home[1])
        db_session.add(crew)
        db_session.commit()
        return crew

    return add


TicketFactory = Callable[..., int]


@pytest.fixture
def open_ticket(client: TestClient, dispatcher: dict[str, str]) -> TicketFactory:
    def open_(village: str, skill: str, ticket_type: str = "complaint",
              **fields: Any) -> int:
        response = client.post("/api/v1/tickets", headers=dispatcher, json={
            "title": f"{ticket_type} at {village}", "village_id": village,
            "required_skill": skill, "type": ticket_type, **fields})
        assert response.status_code == 201, response.text
        ticket_id: int = response.json()["id"]
        return ticket_id

    return open_
