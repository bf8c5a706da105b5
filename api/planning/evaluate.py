"""Routes (ticket orders per crew shift) to a :class:`Plan`: times, breaches, totals.

Both planners hand their routes to :func:`build_plan`, so their figures are measured the
same way: the crew leaves when free, drives the matrix times, works the estimated minutes
on arrival, and drives home.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from api.planning.models import (
    CrewRoute,
    Plan,
    SlaBreach,
    Stop,
    UnassignedTicket,
)
from api.planning.problem import Compiled, Vehicle, Visit


def build_plan(compiled: Compiled, routes: Sequence[Sequence[int]],
               solver: Literal["ortools", "greedy"], solve_seconds: float) -> Plan:
    """The plan for ``routes[v]`` = free ticket indices vehicle v works, in order."""
    if len(routes) != len(compiled.vehicles):
        raise ValueError(f"{len(routes)} routes for {len(compiled.vehicles)} crew shifts")
    crew_routes: list[CrewRoute] = []
    breaches: list[SlaBreach] = []
    for vehicle, route in zip(compiled.vehicles, routes, strict=True):
        visits = compiled.simulate(vehicle, route)
        crew_routes.append(_crew_route(compiled, vehicle, visits))
        breaches.extend(_breach(compiled, vehicle, visit) for visit in visits
                        if visit.finish_s > compiled.deadline_s[visit.ticket])
    routed = {ticket for route in routes for ticket in route}
    left_over = _unassigned(compiled, routed)
    for index, item in left_over:
        if item.predicted_breach:
            ticket = compiled.tickets[index]
            breaches.append(SlaBreach(ticket=ticket.id, priority=ticket.priority, crew=None,
                                      sla_deadline=ticket.sla_deadline,
                                      predicted_finish=None, late_minutes=None))
    weights = compiled.options.priority_weights
    return Plan(
        planned_at=compiled.problem.now, solver=solver, routes=crew_routes,
        unassigned=[item for _, item in left_over], breaches=breaches,
        weighted_breaches=sum(weights[b.priority] for b in breaches),
        total_travel_km=round(sum(r.travel_km for r in crew_routes), 3),
        total_travel_minutes=round(sum(r.travel_minutes for r in crew_routes), 2),
        solve_seconds=round(solve_seconds, 3),
    )


def _crew_route(compiled: Compiled, vehicle: Vehicle, visits: list[Visit]) -> CrewRoute:
    last_point = (int(compiled.ticket_point[visits[-1].ticket]) if visits
                  else vehicle.origin_point)
    last_finish = visits[-1].finish_s if visits else vehicle.depart_s
    back_s = compiled.back_s(last_point, vehicle) if visits else 0
    back_km = (float(compiled.travel_km[last_point, vehicle.end_point])
               if visits and compiled.options.return_to_base else 0.0)
    stops = [_stop(compiled, visit) for visit in visits]
    return CrewRoute(
        crew=vehicle.crew.id, shift_start=vehicle.shift.start, shift_end=vehicle.shift.end,
        depart=compiled.moment(vehicle.depart_s),
        back_at_base=compiled.moment(last_finish + back_s), stops=stops,
        travel_km=round(sum(v.travel_km for v in visits) + back_km, 3),
        travel_minutes=round((sum(v.travel_s for v in visits) + back_s) / 60.0, 2),
        work_minutes=round(sum(v.finish_s - v.arrival_s for v in visits) / 60.0, 2),
    )


def _stop(compiled: Compiled, visit: Visit) -> Stop:
    ticket = compiled.tickets[visit.ticket]
    late_s = max(0, visit.finish_s - int(compiled.deadline_s[visit.ticket]))
    return Stop(
        ticket=ticket.id, village=ticket.village, location=ticket.location,
        arrival=compiled.moment(visit.arrival_s), finish=compiled.moment(visit.finish_s),
        travel_km=round(visit.travel_km, 3), travel_minutes=round(visit.travel_s / 60.0, 2),
        sla_deadline=ticket.sla_deadline, late_minutes=round(late_s / 60.0, 2),
        pinned=visit.pinned,
    )


def _breach(compiled: Compiled, vehicle: Vehicle, visit: Visit) -> SlaBreach:
    ticket = compiled.tickets[visit.ticket]
    return SlaBreach(
        ticket=ticket.id, priority=ticket.priority, crew=vehicle.crew.id,
        sla_deadline=ticket.sla_deadline, predicted_finish=compiled.moment(visit.finish_s),
        late_minutes=round((visit.finish_s - int(compiled.deadline_s[visit.ticket])) / 60.0, 2),
    )


def _unassigned(compiled: Compiled, routed: set[int]) -> list[tuple[int, UnassignedTicket]]:
    horizon = compiled.horizon_s
    found = []
    for index, ticket in enumerate(compiled.tickets):
        if ticket.pinned or index in routed:
            continue
        reason, detail = compiled.set_aside.get(
            index, ("no_capacity", "the shifts of the crews that could do it are full"))
        found.append((index, UnassignedTicket(
            ticket=ticket.id, reason=reason, detail=detail, sla_deadline=ticket.sla_deadline,
            predicted_breach=bool(compiled.deadline_s[index] < horizon))))
    return found
