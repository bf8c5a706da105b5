"""Plans over the simulator's county: every rule holds on realistic positions, and a
re-plan after crews report keeps their work in progress."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from api.planning import (
    Location,
    Plan,
    PlannerOptions,
    PlanningCrew,
    PlanningProblem,
    PlanningTicket,
    Priority,
    Shift,
    Skill,
    TicketStatus,
    greedy_plan,
    plan_routes,
)
from simulator.county import build_county

from .small_county import NOW

OPTIONS = PlannerOptions(time_limit_s=10, solution_limit=300)


def county_problem(seed: int, tickets: int) -> PlanningProblem:
    county = build_county(seed, 30, households_per_village=1)
    rng = np.random.default_rng(seed)
    depot = Location(latitude=county.seat_latitude, longitude=county.seat_longitude)
    townships = [t.id for t in county.townships]
    skills = list(Skill)
    crews = [PlanningCrew(
        id=f"crew-{c}", skills=frozenset({skills[c % 4], skills[(c + 1) % 4]}), home=depot,
        zones=frozenset(townships[c % len(townships):][:1] + townships[:1]),
        shifts=[Shift(start=NOW, end=NOW + timedelta(hours=9))]) for c in range(4)]
    work = []
    for number in range(tickets):
        village = county.villages[int(rng.integers(len(county.villages)))]
        work.append(PlanningTicket(
            id=f"T{number:03d}", village=village.id, township=village.township,
            location=Location(latitude=village.latitude, longitude=village.longitude),
            skill=skills[int(rng.integers(4))], priority=list(Priority)[int(rng.integers(4))],
            sla_deadline=NOW + timedelta(hours=float(rng.uniform(1, 30))),
            service_minutes=float(rng.uniform(20, 90))))
    return PlanningProblem(now=NOW, tickets=work, crews=crews)


def assert_plan_keeps_the_rules(problem: PlanningProblem, plan: Plan) -> None:
    tickets = {t.id: t for t in problem.tickets}
    crews = {c.id: c for c in problem.crews}
    placed = [stop.ticket for route in plan.routes for stop in route.stops]
    left = [u.ticket for u in plan.unassigned]
    assert sorted(placed + left) == sorted(tickets), "every ticket exactly once"
    for route in plan.routes:
        crew = crews[route.crew]
        assert route.depart >= problem.now and route.back_at_base <= route.shift_end
        clock = route.depart
        for stop in route.stops:
            ticket = tickets[stop.ticket]
            assert ticket.skill in crew.skills and crew.covers(ticket.township)
            assert stop.arrival >= clock
            assert stop.finish - stop.arrival == pytest.approx(
                timedelta(minutes=ticket.service_minutes), abs=timedelta(seconds=1))
            assert stop.breach == (stop.finish > ticket.sla_deadline)
            clock = stop.finish
    breached = {b.ticket for b in plan.breaches}
    assert breached == {s.ticket for r in plan.routes for s in r.stops if s.breach} | {
        u.ticket for u in plan.unassigned if u.predicted_breach}
    assert plan.total_travel_km == pytest.approx(sum(r.travel_km for r in plan.routes))


def test_solver_and_baseline_plans_keep_every_rule_on_the_county() -> None:
    problem = county_problem(3, 40)
    solved = plan_routes(problem, options=OPTIONS)
    baseline = greedy_plan(problem, options=OPTIONS)
    for plan in (solved, baseline):
        assert_plan_keeps_the_rules(problem, plan)
    assert solved.weighted_breaches <= baseline.weighted_breaches
    assert solved.assigned_count >= 10


def test_replanning_after_crews_report_keeps_their_current_work() -> None:
    problem = county_problem(4, 30)
    first = plan_routes(problem, options=OPTIONS)
    # Two hours later: each busy crew is working on its first ticket; new tickets arrived.
    later = problem.now + timedelta(hours=2)
    in_hand = {route.crew: route.stops[0] for route in first.routes if route.stops}
    assert in_hand, "the first plan gave some crew work"
    tickets = []
    for ticket in problem.tickets:
        holder = next((crew for crew, stop in in_hand.items() if stop.ticket == ticket.id), None)
        if holder is not None:
            ticket = ticket.model_copy(update={
                "status": TicketStatus.IN_PROGRESS, "crew": holder, "service_minutes": 15})
        tickets.append(ticket)
    tickets += county_problem(5, 6).tickets[:6]
    tickets[-6:] = [t.model_copy(update={"id": f"new-{t.id}"}) for t in tickets[-6:]]
    crews = [crew.model_copy(update={"position": in_hand[crew.id].location})
             if crew.id in in_hand else crew for crew in problem.crews]
    replanned = plan_routes(PlanningProblem(now=later, tickets=tickets, crews=crews),
                            options=OPTIONS)
    for crew, stop in in_hand.items():
        first_stop = next(r for r in replanned.routes if r.crew == crew).stops[0]
        assert (first_stop.ticket, first_stop.pinned) == (stop.ticket, True)
        assert first_stop.arrival == later
        assert first_stop.finish == later + timedelta(minutes=15)
    assert_plan_keeps_the_rules(PlanningProblem(now=later, tickets=tickets, crews=crews),
                                replanned)
