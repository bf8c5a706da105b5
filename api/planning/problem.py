"""A planning problem compiled to integer seconds and index arrays, shared by both planners.

Every crew shift still to come is a *vehicle*: it leaves its start position when the crew
is free, works tickets and must be back at its home base by the shift's end. Work pinned to
a crew (en route, in progress) is laid out first on the crew's first remaining shift, and
the free work starts where and when that ends. Tickets that no vehicle could take (no crew
with the skill, outside every zone, longer than any shift allows) are set aside with their
reason before any search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from api.planning.models import (
    Location,
    PlannerOptions,
    PlanningCrew,
    PlanningProblem,
    PlanningTicket,
    Shift,
    TicketStatus,
    UnassignedReason,
)
from api.planning.travel import TravelModel

#: a location as a dictionary key: latitude, longitude, road-table key
PointKey = tuple[float, float, str | None]


@dataclass
class Vehicle:
    """One crew shift. Times are seconds after the planning moment."""

    index: int
    crew: PlanningCrew
    shift: Shift
    origin_point: int  # where the shift's route starts: crew position or home base
    depart_s: int
    end_point: int
    end_s: int
    pinned: list[int] = field(default_factory=list)
    start_point: int = -1
    ready_s: int = 0


@dataclass(frozen=True)
class Visit:
    """A ticket on a route, as the simulation of the route timed it."""

    ticket: int
    arrival_s: int
    finish_s: int
    travel_s: int
    travel_km: float
    pinned: bool


@dataclass
class Compiled:
    problem: PlanningProblem
    options: PlannerOptions
    points: list[Location]
    travel_s: NDArray[np.int64]
    travel_km: NDArray[np.float64]
    ticket_point: NDArray[np.intp]
    service_s: NDArray[np.int64]
    deadline_s: NDArray[np.int64]
    weight: NDArray[np.int64]
    vehicles: list[Vehicle]
    #: free tickets (indices into problem.tickets) some vehicle could take
    plannable: list[int]
    #: per plannable ticket, the vehicles that could take it (skills, zones, shift fits)
    allowed: dict[int, list[int]]
    set_aside: dict[int, tuple[UnassignedReason, str]]

    @property
    def tickets(self) -> list[PlanningTicket]:
        return self.problem.tickets

    @property
    def horizon_s(self) -> int:
        """The end of the last planned shift."""
        return max(vehicle.end_s for vehicle in self.vehicles)

    def seconds(self, moment: datetime) -> int:
        return round((moment - self.problem.now).total_seconds())

    def moment(self, seconds: int) -> datetime:
        return self.problem.now + timedelta(seconds=seconds)

    def back_s(self, point: int, vehicle: Vehicle) -> int:
        """Seconds from ``point`` to the end of ``vehicle``'s route."""
        if not self.options.return_to_base:
            return 0
        return int(self.travel_s[point, vehicle.end_point])

    def simulate(self, vehicle: Vehicle, route: Sequence[int]) -> list[Visit]:
        """Time ``vehicle``'s pinned work then ``route`` (free ticket indices), in order."""
        visits = []
        at_point, clock = vehicle.origin_point, vehicle.depart_s
        for ticket in [*vehicle.pinned, *route]:
            point = int(self.ticket_point[ticket])
            in_progress = self.tickets[ticket].status is TicketStatus.IN_PROGRESS
            leg_s = 0 if in_progress else int(self.travel_s[at_point, point])
            leg_km = 0.0 if in_progress else float(self.travel_km[at_point, point])
            arrival = clock + leg_s
            finish = arrival + int(self.service_s[ticket])
            visits.append(Visit(ticket, arrival, finish, leg_s, leg_km,
                                ticket in vehicle.pinned))
            at_point, clock = point, finish
        return visits


def compile_problem(problem: PlanningProblem, options: PlannerOptions,
                    travel: TravelModel) -> Compiled:
    """Check the problem (ValueError with the reason) and compile it for the planners."""
    _check(problem)
    points, point_of = _points(problem)
    matrix = travel.matrix(points)
    if matrix.size != len(points):
        raise ValueError(f"the travel model returned a {matrix.size}-point matrix "
                         f"for {len(points)} locations")
    tickets = problem.tickets
    now = problem.now
    compiled = Compiled(
        problem=problem, options=options, points=points,
        travel_s=np.ceil(matrix.minutes * 60.0).astype(np.int64),
        travel_km=matrix.km.astype(np.float64),
        ticket_point=np.array([point_of[_point_key(t.location)] for t in tickets],
                              dtype=np.intp),
        service_s=np.array([math.ceil(t.service_minutes * 60) for t in tickets],
                           dtype=np.int64),
        deadline_s=np.array([round((t.sla_deadline - now).total_seconds()) for t in tickets],
                            dtype=np.int64),
        weight=np.array([options.priority_weights[t.priority] for t in tickets],
                        dtype=np.int64),
        vehicles=[], plannable=[], allowed={}, set_aside={},
    )
    compiled.vehicles = _vehicles(compiled, point_of)
    if not compiled.vehicles:
        raise ValueError(f"no crew has a shift ending after {now.isoformat()}: "
                         "give the crews' next shifts")
    _eligibility(compiled)
    return compiled


def _check(problem: PlanningProblem) -> None:
    if not problem.crews:
        raise ValueError("cannot plan without crews: the problem lists none")
    crew_ids = [crew.id for crew in problem.crews]
    ticket_ids = [ticket.id for ticket in problem.tickets]
    for kind, ids in (("crew", crew_ids), ("ticket", ticket_ids)):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate {kind} ids: {duplicates}")
    known = set(crew_ids)
    for ticket in problem.tickets:
        if ticket.pinned and ticket.crew not in known:
            raise ValueError(f"ticket {ticket.id} is {ticket.status.value} with crew "
                             f"{ticket.crew!r}, which is not among the crews")


def _point_key(location: Location) -> PointKey:
    return (location.latitude, location.longitude, location.key)


def _points(problem: PlanningProblem) -> tuple[list[Location], dict[PointKey, int]]:
    """The distinct locations (crew homes and positions, tickets) and their indices."""
    point_of: dict[PointKey, int] = {}
    points: list[Location] = []
    wanted = [crew.home for crew in problem.crews]
    wanted += [crew.position for crew in problem.crews if crew.position is not None]
    wanted += [ticket.location for ticket in problem.tickets]
    for location in wanted:
        key = _point_key(location)
        if key not in point_of:
            point_of[key] = len(points)
            points.append(location)
    return points, point_of


def _vehicles(compiled: Compiled,
              point_of: dict[PointKey, int]) -> list[Vehicle]:
    """One vehicle per crew shift that has not ended, pinned work on the first of them."""
    problem = compiled.problem
    pinned_of: dict[str, list[int]] = {crew.id: [] for crew in problem.crews}
    for index, ticket in enumerate(problem.tickets):
        if ticket.pinned and ticket.crew is not None:
            pinned_of[ticket.crew].append(index)
    vehicles: list[Vehicle] = []
    for crew in problem.crews:
        # Work in progress comes before work the crew is still driving to.
        pinned = sorted(pinned_of[crew.id], key=lambda i: (
            problem.tickets[i].status is not TicketStatus.IN_PROGRESS, i))
        shifts = [s for s in crew.shifts if s.end > problem.now]
        if not shifts and pinned:
            shifts = crew.shifts[-1:]  # working past the end of its last shift
        home = point_of[_point_key(crew.home)]
        free_from = max(problem.now, crew.available_from or problem.now)
        for number, shift in enumerate(shifts):
            first = number == 0
            origin = home
            if first and crew.position is not None:
                origin = point_of[_point_key(crew.position)]
            vehicle = Vehicle(
                index=len(vehicles), crew=crew, shift=shift, origin_point=origin,
                depart_s=compiled.seconds(max(shift.start, free_from)), end_point=home,
                end_s=compiled.seconds(shift.end), pinned=pinned if first else [])
            visits = compiled.simulate(vehicle, [])
            vehicle.start_point = (int(compiled.ticket_point[visits[-1].ticket]) if visits
                                   else vehicle.origin_point)
            vehicle.ready_s = visits[-1].finish_s if visits else vehicle.depart_s
            vehicles.append(vehicle)
    return vehicles


def _eligibility(compiled: Compiled) -> None:
    """Which vehicles could take each free ticket; the reason where none could."""
    tickets = compiled.tickets
    vehicles = compiled.vehicles
    start = np.array([v.start_point for v in vehicles], dtype=np.intp)
    end = np.array([v.end_point for v in vehicles], dtype=np.intp)
    ready = np.array([v.ready_s for v in vehicles], dtype=np.int64)
    shift_end = np.array([v.end_s for v in vehicles], dtype=np.int64)
    for index, ticket in enumerate(tickets):
        if ticket.pinned:
            continue
        point = int(compiled.ticket_point[index])
        back = (compiled.travel_s[point, end] if compiled.options.return_to_base
                else np.zeros(len(vehicles), dtype=np.int64))
        done = ready + compiled.travel_s[start, point] + compiled.service_s[index] + back
        skilled = np.array([ticket.skill in v.crew.skills for v in vehicles], dtype=bool)
        in_zone = np.array([v.crew.covers(ticket.township) for v in vehicles], dtype=bool)
        fits = skilled & in_zone & (done <= shift_end)
        if fits.any():
            compiled.plannable.append(index)
            compiled.allowed[index] = [int(v) for v in np.flatnonzero(fits)]
        elif not skilled.any():
            compiled.set_aside[index] = (
                "no_skilled_crew", f"no crew has the skill {ticket.skill.value}")
        elif not (skilled & in_zone).any():
            compiled.set_aside[index] = (
                "outside_zones", f"no crew with the skill {ticket.skill.value} covers "
                f"township {ticket.township}")
        else:
            compiled.set_aside[index] = (
                "does_not_fit_shift", "no skilled crew covering it can get there, do "
                f"{ticket.service_minutes:.0f} min of work and get back within a shift")
