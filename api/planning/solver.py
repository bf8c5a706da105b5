"""The OR-Tools routing model: crew shifts as vehicles, tickets as optional visits.

Each plannable ticket becomes two alternative nodes in one disjunction (at most one is
visited, dropping both costs a penalty):

- *on time*: a hard time window, arrival <= SLA deadline - work time;
- *late*: no deadline, but every arc into it carries the breach penalty (priority weight x
  ``breach_penalty_minutes``) and a soft upper bound charges each hour past the deadline.

So the objective counts weighted breaches as steps, which a soft bound alone cannot, then
lateness, then travel time. Skills, zones and shifts that fit become the allowed vehicles of
both nodes; shift ends are hard bounds on the route end (home base). Cost unit: 1/60 of a
second of driving, so the per-second lateness cost stays an integer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from api.planning.problem import Compiled

log = logging.getLogger(__name__)

#: cost units per second of driving
COST_PER_TRAVEL_SECOND = 60


@dataclass
class _Nodes:
    """The routing graph: vehicle starts, vehicle ends, then ticket copies."""

    point: NDArray[np.intp]
    service_s: NDArray[np.int64]
    ticket: NDArray[np.intp]  # -1 for starts and ends
    late: NDArray[np.bool_]
    on_time_node: dict[int, int]
    late_node: dict[int, int]


def solve_routes(compiled: Compiled, warm_start: list[list[int]] | None) -> list[list[int]] | None:
    """Free ticket indices per vehicle, or None when the search found no solution."""
    nodes = _nodes(compiled)
    vehicles = compiled.vehicles
    count = len(vehicles)
    manager = pywrapcp.RoutingIndexManager(
        len(nodes.point), count, list(range(count)), list(range(count, 2 * count)))
    routing = pywrapcp.RoutingModel(manager)
    travel = _travel_between_nodes(compiled, nodes)
    time_matrix = travel + nodes.service_s[:, None]
    time_callback = routing.RegisterTransitMatrix(time_matrix.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(
        routing.RegisterTransitMatrix(_arc_costs(compiled, nodes, travel).tolist()))
    horizon = max(max(v.end_s, v.ready_s) for v in vehicles) + int(travel.max()) + 1
    routing.AddDimension(time_callback, 0, horizon, False, "time")
    time = routing.GetDimensionOrDie("time")
    _shift_bounds(compiled, routing, time)
    _ticket_nodes(compiled, nodes, manager, routing, time)
    parameters = _search_parameters(compiled)
    if warm_start is not None:
        initial = routing.ReadAssignmentFromRoutes(
            [[manager.NodeToIndex(node) for node in route]
             for route in _node_routes(compiled, nodes, warm_start)], True)
        if initial is None:
            log.warning("the greedy plan is not a valid start for the solver; searching cold")
            solution = routing.SolveWithParameters(parameters)
        else:
            solution = routing.SolveFromAssignmentWithParameters(initial, parameters)
    else:
        solution = routing.SolveWithParameters(parameters)
    if solution is None:
        log.warning("OR-Tools found no plan (status %s)", routing.status())
        return None
    return _routes_of(solution, manager, routing, nodes, count)


def _nodes(compiled: Compiled) -> _Nodes:
    vehicles = compiled.vehicles
    point = [v.start_point for v in vehicles] + [v.end_point for v in vehicles]
    service = [0] * len(point)
    ticket = [-1] * len(point)
    late = [False] * len(point)
    on_time_node: dict[int, int] = {}
    late_node: dict[int, int] = {}
    for index in compiled.plannable:
        for is_late in (False, True):
            if not is_late and not _can_be_on_time(compiled, index):
                continue
            (late_node if is_late else on_time_node)[index] = len(point)
            point.append(int(compiled.ticket_point[index]))
            service.append(int(compiled.service_s[index]))
            ticket.append(index)
            late.append(is_late)
    return _Nodes(np.array(point, dtype=np.intp), np.array(service, dtype=np.int64),
                  np.array(ticket, dtype=np.intp), np.array(late, dtype=np.bool_),
                  on_time_node, late_node)


def _can_be_on_time(compiled: Compiled, index: int) -> bool:
    """Some allowed shift, going straight there, finishes before the deadline."""
    point = int(compiled.ticket_point[index])
    latest_arrival = int(compiled.deadline_s[index] - compiled.service_s[index])
    return any(
        compiled.vehicles[v].ready_s
        + int(compiled.travel_s[compiled.vehicles[v].start_point, point]) <= latest_arrival
        for v in compiled.allowed[index])


def _travel_between_nodes(compiled: Compiled, nodes: _Nodes) -> NDArray[np.int64]:
    travel = compiled.travel_s[np.ix_(nodes.point, nodes.point)].astype(np.int64)
    if not compiled.options.return_to_base:
        count = len(compiled.vehicles)
        travel[:, count:2 * count] = 0
    return travel


def _arc_costs(compiled: Compiled, nodes: _Nodes,
               travel: NDArray[np.int64]) -> NDArray[np.int64]:
    costs = travel * COST_PER_TRAVEL_SECOND
    breach_unit = round(compiled.options.breach_penalty_minutes * 60 * COST_PER_TRAVEL_SECOND)
    late_columns = np.flatnonzero(nodes.late)
    penalties = compiled.weight[nodes.ticket[late_columns]] * breach_unit
    costs[:, late_columns] += penalties[None, :]
    return costs


def _lateness_cost_per_second(compiled: Compiled, index: int) -> int:
    per_hour = compiled.options.lateness_penalty_per_hour * 60 * COST_PER_TRAVEL_SECOND
    return round(int(compiled.weight[index]) * per_hour / 3600)


def _drop_penalty(compiled: Compiled, index: int) -> int:
    """Leaving a ticket over costs more than doing it late at the end of the horizon."""
    options = compiled.options
    weight = int(compiled.weight[index])
    minutes = options.unassigned_penalty_minutes
    overdue_at_horizon_s = compiled.horizon_s - int(compiled.deadline_s[index])
    if overdue_at_horizon_s > 0:
        minutes += options.breach_penalty_minutes
        minutes += options.lateness_penalty_per_hour * overdue_at_horizon_s / 3600
    return round(weight * minutes * 60 * COST_PER_TRAVEL_SECOND)


def _shift_bounds(compiled: Compiled, routing: pywrapcp.RoutingModel,
                  time: pywrapcp.RoutingDimension) -> None:
    for v, vehicle in enumerate(compiled.vehicles):
        time.CumulVar(routing.Start(v)).SetRange(vehicle.ready_s, vehicle.ready_s)
        # A shift overrun by pinned work ends when that work and the way home are done.
        latest_end = max(vehicle.end_s,
                         vehicle.ready_s + compiled.back_s(vehicle.start_point, vehicle))
        time.CumulVar(routing.End(v)).SetMax(latest_end)


def _ticket_nodes(compiled: Compiled, nodes: _Nodes, manager: pywrapcp.RoutingIndexManager,
                  routing: pywrapcp.RoutingModel, time: pywrapcp.RoutingDimension) -> None:
    for index in compiled.plannable:
        latest_arrival = max(0, int(compiled.deadline_s[index] - compiled.service_s[index]))
        alternatives = []
        if index in nodes.on_time_node:
            on_time = manager.NodeToIndex(nodes.on_time_node[index])
            time.CumulVar(on_time).SetMax(latest_arrival)
            alternatives.append(on_time)
        late = manager.NodeToIndex(nodes.late_node[index])
        time.SetCumulVarSoftUpperBound(late, latest_arrival,
                                       _lateness_cost_per_second(compiled, index))
        alternatives.append(late)
        barred = sorted(set(range(len(compiled.vehicles))) - set(compiled.allowed[index]))
        for routing_index in alternatives:
            # SetAllowedVehiclesForIndex would say the same, but its SWIG binding rejects
            # every Python sequence in ortools 9.15 (absl::Span<const int>).
            routing.VehicleVar(routing_index).RemoveValues(barred)
        routing.AddDisjunction(alternatives, _drop_penalty(compiled, index), 1)


def _search_parameters(compiled: Compiled) -> pywrapcp.RoutingSearchParameters:
    options = compiled.options
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION)
    parameters.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH)
    parameters.time_limit.FromMilliseconds(round(options.time_limit_s * 1000))
    if options.solution_limit is not None:
        parameters.solution_limit = options.solution_limit
    return parameters


def _node_routes(compiled: Compiled, nodes: _Nodes,
                 routes: list[list[int]]) -> list[list[int]]:
    """Ticket routes as node routes: the on-time copy where the ticket makes its deadline."""
    node_routes = []
    for vehicle, route in zip(compiled.vehicles, routes, strict=True):
        visits = compiled.simulate(vehicle, route)[len(vehicle.pinned):]
        node_routes.append([
            nodes.on_time_node[visit.ticket]
            if visit.ticket in nodes.on_time_node
            and visit.finish_s <= compiled.deadline_s[visit.ticket]
            else nodes.late_node[visit.ticket]
            for visit in visits])
    return node_routes


def _routes_of(solution: pywrapcp.Assignment, manager: pywrapcp.RoutingIndexManager,
               routing: pywrapcp.RoutingModel, nodes: _Nodes, count: int) -> list[list[int]]:
    routes = []
    for v in range(count):
        route = []
        index = solution.Value(routing.NextVar(routing.Start(v)))
        while not routing.IsEnd(index):
            route.append(int(nodes.ticket[manager.IndexToNode(index)]))
            index = solution.Value(routing.NextVar(index))
        routes.append(route)
    return routes
