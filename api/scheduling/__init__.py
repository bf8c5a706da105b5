"""Crew scheduling in the ticket service: the planner (api/planning) wired to tickets and crews.

``service.replan`` builds a :class:`api.planning.PlanningProblem` from the database, plans
in a worker thread and applies the plan (crew, route position, ETA; open -> scheduled,
audited); ``loop.Replanner`` re-plans when the planning inputs change. See README.md.
"""
