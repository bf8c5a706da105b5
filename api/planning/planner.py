"""Plan crews' routes: OR-Tools routing with time windows, or the greedy baseline."""

from __future__ import annotations

import logging
import time

from api.planning.evaluate import build_plan
from api.planning.greedy import greedy_routes
from api.planning.models import Plan, PlannerOptions, PlanningProblem
from api.planning.problem import compile_problem
from api.planning.solver import solve_routes
from api.planning.travel import GreatCircleTravel, TravelModel

log = logging.getLogger(__name__)


def plan_routes(problem: PlanningProblem, *, options: PlannerOptions | None = None,
                travel: TravelModel | None = None) -> Plan:
    """Assign and order tickets per crew shift: fewest weighted SLA breaches, then least
    travel time, within ``options.time_limit_s`` of search.

    Re-planning is the same call with the crews' reported positions and availability and
    the tickets' current statuses: en-route and in-progress work stays first on its crew.
    Falls back to the greedy plan (``Plan.solver == "greedy"``) if the search finds nothing.
    Raises ValueError on an unusable problem (no crews, duplicate ids, unknown crew).
    """
    options = options or PlannerOptions()
    started = time.perf_counter()
    compiled = compile_problem(problem, options, travel or GreatCircleTravel())
    baseline = greedy_routes(compiled)
    routes = None
    if compiled.plannable:
        routes = solve_routes(compiled, baseline if options.warm_start else None)
    else:
        routes = baseline  # nothing to search: only pinned or impossible work
    if routes is None:
        log.warning("planning %d tickets fell back to the greedy plan", len(problem.tickets))
        return build_plan(compiled, baseline, "greedy", time.perf_counter() - started)
    return build_plan(compiled, routes, "ortools", time.perf_counter() - started)


def greedy_plan(problem: PlanningProblem, *, options: PlannerOptions | None = None,
                travel: TravelModel | None = None) -> Plan:
    """The earliest-deadline baseline: each ticket in deadline order to the shift that can
    reach it earliest (see api.planning.greedy)."""
    options = options or PlannerOptions()
    started = time.perf_counter()
    compiled = compile_problem(problem, options, travel or GreatCircleTravel())
    return build_plan(compiled, greedy_routes(compiled), "greedy",
                      time.perf_counter() - started)
