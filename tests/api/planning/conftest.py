"""Fixtures over the hand-checkable county of small_county.py."""

from __future__ import annotations

import pytest

from api.planning import PlannerOptions, PlanningCrew, RoadTableTravel, Skill

from . import small_county
from .small_county import crew


@pytest.fixture
def road() -> RoadTableTravel:
    return small_county.road()


@pytest.fixture
def crews() -> list[PlanningCrew]:
    return [crew("north", {Skill.PIPE, Skill.METER}, {"t1"}),
            crew("south", {Skill.PUMP_ELECTRICAL, Skill.METER}, {"t2"})]


@pytest.fixture
def options() -> PlannerOptions:
    """Short and machine-independent: the search stops after a fixed number of solutions."""
    return PlannerOptions(time_limit_s=5, solution_limit=200)
