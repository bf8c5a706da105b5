"""The greedy earliest-deadline baseline (and the fallback when the solver finds nothing).

Tickets are taken in SLA-deadline order (higher priority first on a tie); each goes to the
end of the route of the crew shift that can reach it earliest among those with the skill,
the zone and the time left to do it and get home. What fits nowhere is left unassigned.
"""

from __future__ import annotations

from api.planning.problem import Compiled


def greedy_routes(compiled: Compiled) -> list[list[int]]:
    """Free ticket indices per vehicle, in working order."""
    vehicles = compiled.vehicles
    at_point = [v.start_point for v in vehicles]
    clock = [v.ready_s for v in vehicles]
    routes: list[list[int]] = [[] for _ in vehicles]
    order = sorted(compiled.plannable, key=lambda i: (
        int(compiled.deadline_s[i]), -int(compiled.weight[i]), compiled.tickets[i].id))
    for ticket in order:
        point = int(compiled.ticket_point[ticket])
        best: tuple[int, int] | None = None  # (arrival, vehicle)
        for v in compiled.allowed[ticket]:
            arrival = clock[v] + int(compiled.travel_s[at_point[v], point])
            finish = arrival + int(compiled.service_s[ticket])
            if finish + compiled.back_s(point, vehicles[v]) > vehicles[v].end_s:
                continue
            if best is None or arrival < best[0]:
                best = (arrival, v)
        if best is None:
            continue
        arrival, v = best
        routes[v].append(ticket)
        at_point[v] = point
        clock[v] = arrival + int(compiled.service_s[ticket])
    return routes
