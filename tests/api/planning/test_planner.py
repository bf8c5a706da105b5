"""The planner on the hand-checkable county (see small_county.py for the road table)."""

from __future__ import annotations

import pytest

from api.planning import (
    Location,
    Plan,
    PlannerOptions,
    PlanningCrew,
    PlanningProblem,
    PlanningTicket,
    Priority,
    RoadTableTravel,
    Shift,
    Skill,
    TicketStatus,
    greedy_plan,
    plan_routes,
)

from .small_county import NOW, at, crew, place, ticket


def five_tickets() -> list[PlanningTicket]:
    return [
        ticket("T1", "A", Skill.PIPE),
        ticket("T2", "B", Skill.METER),
        ticket("T3", "C", Skill.PUMP_ELECTRICAL),
        ticket("T4", "D", Skill.METER),
        ticket("T5", "A", Skill.WATER_QUALITY),
    ]


def plan(tickets: list[PlanningTicket], crews: list[PlanningCrew], road: RoadTableTravel,
         options: PlannerOptions) -> Plan:
    return plan_routes(PlanningProblem(now=NOW, tickets=tickets, crews=crews),
                       options=options, travel=road)


def test_each_ticket_goes_to_a_crew_with_its_skill_and_zone(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    result = plan(five_tickets(), crews, road, options)
    assert result.solver == "ortools"
    assert sorted(result.route_of("north")) == ["T1", "T2"]
    # T4 is meter work: north has the skill but not the township.
    assert sorted(result.route_of("south")) == ["T3", "T4"]
    assert result.breaches == []


def test_a_ticket_no_crew_can_do_is_left_unassigned_with_the_reason(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    result = plan(five_tickets(), crews, road, options)
    (left,) = result.unassigned
    assert (left.ticket, left.reason) == ("T5", "no_skilled_crew")
    assert "water_quality" in left.detail
    assert not left.predicted_breach  # due in 24 h, after today's shifts


def test_a_ticket_outside_every_skilled_crews_zone_says_so(
        road: RoadTableTravel, options: PlannerOptions) -> None:
    only_north = [crew("north", {Skill.PIPE}, {"t1"})]
    result = plan([ticket("T1", "C", Skill.PIPE)], only_north, road, options)
    assert [(u.ticket, u.reason) for u in result.unassigned] == [("T1", "outside_zones")]


def test_etas_follow_the_road_table_and_the_crews_return_home(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    result = plan(five_tickets(), crews, road, options)
    north = next(r for r in result.routes if r.crew == "north")
    # depot -> A 20 min, 60 min work, A -> B 15, 60 min work, B -> depot 30; or the mirror.
    first, second = north.stops
    assert first.arrival == at(20 / 60 if first.ticket == "T1" else 30 / 60)
    assert (second.arrival - first.finish).total_seconds() == 15 * 60
    assert north.travel_minutes == 65 and north.travel_km == pytest.approx(39.0)
    assert north.back_at_base == at((65 + 120) / 60)
    assert result.total_travel_minutes == 130


def test_an_urgent_ticket_goes_first_when_waiting_would_breach_it(
        road: RoadTableTravel, options: PlannerOptions) -> None:
    tickets = [ticket("routine", "A", Skill.PIPE, due_in_hours=24),
               ticket("burst", "B", Skill.PIPE, priority=Priority.URGENT, due_in_hours=1.75)]
    result = plan(tickets, [crew("north", {Skill.PIPE}, {"t1"})], road, options)
    # A first would finish the burst at 10:35, after its 09:45 deadline.
    assert result.route_of("north") == ["burst", "routine"]
    assert result.breaches == []


def test_when_not_everything_fits_the_higher_priority_work_is_done(
        road: RoadTableTravel, options: PlannerOptions) -> None:
    tickets = [ticket("low", "A", Skill.PIPE, work=90, priority=Priority.LOW, due_in_hours=2),
               ticket("urgent", "B", Skill.PIPE, work=90, priority=Priority.URGENT,
                      due_in_hours=2)]
    short = [crew("north", {Skill.PIPE}, {"t1"}, shift_hours=2.5)]
    result = plan(tickets, short, road, options)
    assert result.route_of("north") == ["urgent"]
    (left,) = result.unassigned
    assert (left.ticket, left.reason, left.predicted_breach) == ("low", "no_capacity", True)
    assert [(b.ticket, b.crew) for b in result.breaches] == [("low", None)]
    assert result.weighted_breaches == options.priority_weights[Priority.LOW]


def test_routes_end_at_home_before_the_shift_ends(
        road: RoadTableTravel, options: PlannerOptions) -> None:
    tickets = [ticket(f"T{n}", "AB"[n % 2], Skill.PIPE, work=50) for n in range(6)]
    tickets.append(ticket("long", "A", Skill.PIPE, work=200))
    result = plan(tickets, [crew("north", {Skill.PIPE}, {"t1"}, shift_hours=3)], road, options)
    (route,) = result.routes
    assert route.back_at_base <= route.shift_end
    # 3 h: two 50-minute jobs and the driving fit, a third does not.
    assert len(route.stops) == 2
    reasons = {u.ticket: u.reason for u in result.unassigned}
    assert reasons.pop("long") == "does_not_fit_shift"
    assert set(reasons.values()) == {"no_capacity"}


def test_work_left_from_the_first_shift_goes_to_the_next(
        road: RoadTableTravel, options: PlannerOptions) -> None:
    two_days = crew("north", {Skill.PIPE}, {"t1"}, shifts=[
        Shift(start=at(0), end=at(3)), Shift(start=at(24), end=at(27))])
    tickets = [ticket(f"T{n}", "A", Skill.PIPE, work=50, due_in_hours=48) for n in range(4)]
    result = plan(tickets, [two_days], road, options)
    assert [len(route.stops) for route in result.routes] == [2, 2]
    assert result.routes[1].stops[0].arrival == at(24 + 20 / 60)
    assert result.unassigned == [] and result.breaches == []


def test_replanning_keeps_work_in_progress_first_on_its_crew(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    # south is halfway through a meter job at A (outside its zone: it was sent there by hand).
    tickets = five_tickets()[:4] + [ticket(
        "T9", "A", Skill.METER, work=30, status=TicketStatus.IN_PROGRESS, crew="south")]
    crews[1] = crews[1].model_copy(update={"position": place("A")})
    result = plan(tickets, crews, road, options)
    south = next(r for r in result.routes if r.crew == "south")
    first = south.stops[0]
    assert (first.ticket, first.pinned, first.arrival, first.travel_minutes) == (
        "T9", True, NOW, 0)
    # then A -> C or D (40 min) for its own work
    assert sorted(stop.ticket for stop in south.stops[1:]) == ["T3", "T4"]
    assert south.stops[1].arrival == at(0.5 + 40 / 60)
    assert all(not stop.pinned for stop in south.stops[1:])


def test_en_route_work_stays_with_its_crew_even_when_another_is_closer(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    tickets = [ticket("T2", "B", Skill.METER, status=TicketStatus.EN_ROUTE, crew="south"),
               ticket("T4", "D", Skill.METER)]
    result = plan(tickets, crews, road, options)
    assert result.route_of("south") == ["T2", "T4"]
    assert result.route_of("north") == []


def test_scheduled_work_may_move_to_a_better_crew(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    tickets = [ticket("T2", "B", Skill.METER, status=TicketStatus.SCHEDULED, crew="south")]
    assert plan(tickets, crews, road, options).route_of("north") == ["T2"]


def test_a_crew_free_only_later_starts_then_from_where_it_is(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    crews[0] = crews[0].model_copy(update={"position": place("B"),
                                           "available_from": at(2)})
    result = plan([ticket("T1", "A", Skill.PIPE)], crews, road, options)
    (stop,) = result.routes[0].stops
    assert stop.arrival == at(2 + 15 / 60)


def test_the_same_problem_gives_the_same_plan(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    tickets = [ticket(f"T{n}", "ABCD"[n % 4], [Skill.PIPE, Skill.METER][n % 2], work=20 + n,
                      due_in_hours=2 + n % 5) for n in range(12)]
    first = plan(tickets, crews, road, options)
    second = plan(tickets, crews, road, options)
    assert first.model_dump(exclude={"solve_seconds"}) == \
        second.model_dump(exclude={"solve_seconds"})


def test_the_solver_never_breaches_more_than_the_greedy_baseline(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    tickets = [ticket(f"T{n}", "ABCD"[n % 4], [Skill.PIPE, Skill.METER][n % 2], work=40,
                      due_in_hours=1 + n % 6, priority=list(Priority)[n % 4])
               for n in range(16)]
    problem = PlanningProblem(now=NOW, tickets=tickets, crews=crews)
    solved = plan_routes(problem, options=options, travel=road)
    baseline = greedy_plan(problem, options=options, travel=road)
    assert baseline.solver == "greedy"
    assert solved.weighted_breaches <= baseline.weighted_breaches
    assert solved.assigned_count + len(solved.unassigned) == len(tickets)


def test_without_tickets_every_crew_gets_an_empty_route(
        crews: list[PlanningCrew], road: RoadTableTravel, options: PlannerOptions) -> None:
    result = plan([], crews, road, options)
    assert [(r.crew, r.stops, r.travel_km) for r in result.routes] == [
        ("north", [], 0.0), ("south", [], 0.0)]


def test_planning_without_crews_is_refused(road: RoadTableTravel) -> None:
    with pytest.raises(ValueError, match="without crews"):
        plan_routes(PlanningProblem(now=NOW, tickets=five_tickets(), crews=[]), travel=road)


def test_an_unknown_skill_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="skill"):
        ticket("T1", "A", "welding")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="skills"):
        crew("north", {"welding"}, set())  # type: ignore[arg-type]


@pytest.mark.parametrize(("tickets", "message"), [
    ([ticket("T1", "A", Skill.PIPE), ticket("T1", "B", Skill.PIPE)], "duplicate ticket ids"),
    ([ticket("T1", "A", Skill.PIPE, status=TicketStatus.IN_PROGRESS, crew="west")],
     "'west', which is not among the crews"),
])
def test_inconsistent_problems_are_refused(
        tickets: list[PlanningTicket], message: str, crews: list[PlanningCrew],
        road: RoadTableTravel) -> None:
    with pytest.raises(ValueError, match=message):
        plan_routes(PlanningProblem(now=NOW, tickets=tickets, crews=crews), travel=road)


def test_work_in_progress_must_name_its_crew() -> None:
    with pytest.raises(ValueError, match="names no crew"):
        ticket("T1", "A", Skill.PIPE, status=TicketStatus.IN_PROGRESS)


def test_naive_times_and_backwards_shifts_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        PlanningProblem(now=NOW.replace(tzinfo=None), tickets=[], crews=[])
    with pytest.raises(ValueError, match="before it starts"):
        crew("north", {Skill.PIPE}, set(), shift_hours=-1)


def test_a_road_table_missing_a_location_is_refused(crews: list[PlanningCrew]) -> None:
    stray = ticket("T1", "A", Skill.PIPE).model_copy(
        update={"location": Location(latitude=39.5, longitude=112.5, key="Z")})
    with pytest.raises(ValueError, match="'Z' is not in the road table"):
        plan_routes(PlanningProblem(now=NOW, tickets=[stray], crews=crews),
                    travel=RoadTableTravel(["depot"], [[0.0]], [[0.0]]))


def test_work_in_progress_past_the_shift_end_is_kept_and_nothing_is_added(
        road: RoadTableTravel, options: PlannerOptions) -> None:
    late = crew("north", {Skill.PIPE}, {"t1"}, shifts=[Shift(start=at(-9), end=at(-1))],
                position=place("A"))
    tickets = [ticket("T1", "A", Skill.PIPE, status=TicketStatus.IN_PROGRESS, crew="north",
                      work=30),
               ticket("T2", "B", Skill.PIPE)]
    result = plan(tickets, [late], road, options)
    assert result.route_of("north") == ["T1"]
    assert result.routes[0].back_at_base == at(0.5 + 20 / 60)
    assert [(u.ticket, u.reason) for u in result.unassigned] == [("T2", "does_not_fit_shift")]


def test_planning_after_every_shift_has_ended_asks_for_the_next_shifts(
        road: RoadTableTravel) -> None:
    finished = crew("north", {Skill.PIPE}, {"t1"}, shifts=[Shift(start=at(-9), end=at(-1))])
    with pytest.raises(ValueError, match="give the crews' next shifts"):
        plan_routes(PlanningProblem(now=NOW, tickets=[ticket("T1", "A", Skill.PIPE)],
                                    crews=[finished]), travel=road)
