"""A small county you can check by hand: a depot, two townships, four villages.

Driving minutes (both ways; km = minutes x 0.6, i.e. 36 km/h):

    depot-A 20   depot-B 30   depot-C 20   depot-D 30
    A-B 15       C-D 15       A or B to C or D 40

A and B are in township t1, C and D in t2. Crew ``north`` (pipe, meter) covers t1, crew
``south`` (pump/electrical, meter) covers t2; both based at the depot, on shift 08:00-16:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from api.planning import (
    Location,
    PlanningCrew,
    PlanningTicket,
    Priority,
    RoadTableTravel,
    Shift,
    Skill,
)

LOCAL = timezone(timedelta(hours=8))
NOW = datetime(2026, 7, 14, 8, 0, tzinfo=LOCAL)
KEYS = ["depot", "A", "B", "C", "D"]
MINUTES = np.array([
    [0, 20, 30, 20, 30],
    [20, 0, 15, 40, 40],
    [30, 15, 0, 40, 40],
    [20, 40, 40, 0, 15],
    [30, 40, 40, 15, 0],
], dtype=np.float64)
TOWNSHIP = {"A": "t1", "B": "t1", "C": "t2", "D": "t2"}
#: made-up coordinates: the road table, not the positions, gives the travel
POSITION = {"depot": (39.0, 112.0), "A": (39.1, 112.0), "B": (39.2, 112.0),
            "C": (38.9, 112.0), "D": (38.8, 112.0)}


def place(key: str) -> Location:
    latitude, longitude = POSITION[key]
    return Location(latitude=latitude, longitude=longitude, key=key)


def at(hours: float) -> datetime:
    """``hours`` after 08:00 on the planning day."""
    return NOW + timedelta(hours=hours)


def ticket(ticket_id: str, village: str, skill: Skill, *, work: float = 60,
           due_in_hours: float = 24, priority: Priority = Priority.NORMAL,
           **extra: object) -> PlanningTicket:
    return PlanningTicket.model_validate({
        "id": ticket_id, "location": place(village), "village": village,
        "township": TOWNSHIP[village], "skill": skill, "service_minutes": work,
        "sla_deadline": at(due_in_hours), "priority": priority, **extra})


def crew(crew_id: str, skills: set[Skill], zones: set[str], *, shift_hours: float = 8,
         **extra: object) -> PlanningCrew:
    return PlanningCrew.model_validate({
        "id": crew_id, "skills": skills, "zones": zones, "home": place("depot"),
        "shifts": [Shift(start=NOW, end=at(shift_hours))], **extra})


def road() -> RoadTableTravel:
    return RoadTableTravel(KEYS, MINUTES * 0.6, MINUTES)
