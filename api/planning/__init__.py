"""Crew scheduling: which crew does which ticket, in what order, when.

A pure package (no database, no web framework): the API maps its tickets and crews to
:class:`PlanningTicket` and :class:`PlanningCrew`, calls :func:`plan_routes` and stores
the :class:`Plan`. :func:`greedy_plan` is the earliest-deadline baseline. Travel comes from
a :class:`TravelModel`: :class:`GreatCircleTravel` by default, or a measured road table
(:class:`RoadTableTravel`).
"""

from api.planning.models import (
    CrewRoute,
    Location,
    Plan,
    PlannerOptions,
    PlanningCrew,
    PlanningProblem,
    PlanningTicket,
    Priority,
    Shift,
    Skill,
    SlaBreach,
    Stop,
    TicketStatus,
    UnassignedReason,
    UnassignedTicket,
)
from api.planning.planner import greedy_plan, plan_routes
from api.planning.travel import (
    GreatCircleTravel,
    RoadTableTravel,
    TravelMatrix,
    TravelModel,
    TravelSettings,
    great_circle_km,
)

__all__ = [
    "CrewRoute", "GreatCircleTravel", "Location", "Plan", "PlannerOptions", "PlanningCrew",
    "PlanningProblem", "PlanningTicket", "Priority", "RoadTableTravel", "Shift", "Skill",
    "SlaBreach", "Stop", "TicketStatus", "TravelMatrix", "TravelModel", "TravelSettings",
    "UnassignedReason", "UnassignedTicket", "great_circle_km", "greedy_plan", "plan_routes",
]
