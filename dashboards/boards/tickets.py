"""Tickets and crews: open work, SLA breaches and crew workload, from the ticket database.

SQL on the PostgreSQL data source "Tickets" against the API's tables (api/tickets/models.py,
api/crews/models.py, api/assets/models.py). The township and village variables read the
asset tables there too, so the board works without InfluxDB.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard as sdk

from api.tickets.models import ACTIVE_STATUSES
from dashboards import panels as p
from dashboards.boards.base import Board, PanelBuilder, finish, new_board
from dashboards.queries import TICKETS, sql
from dashboards.standards import Standards

UID = "rw-tickets-crews"
#: ticket statuses in which the problem still needs a crew, as SQL literals
ACTIVE = ", ".join(f"'{status.value}'" for status in sorted(ACTIVE_STATUSES))
IN_VILLAGES = "t.village_id IN ($village)"


def sla_state(standards: Standards) -> str:
    """An active ticket's SLA state: breached, due soon, on time (SQL CASE on due_at)."""
    return ("CASE WHEN t.due_at < now() THEN 'breached' "
            f"WHEN t.due_at < now() + interval '{standards.sla_due_soon_h:g} hours' "
            "THEN 'due soon' ELSE 'on time' END")


def tickets_by_sla_state(standards: Standards, *, span: int = 12) -> PanelBuilder:
    """Active tickets per SLA state (also on the county overview)."""
    panel = p.bars(
        "Open tickets by SLA state",
        f"Active tickets against their repair deadline (minor {standards.sla_minor_h:g} h, "
        f"ordinary {standards.sla_ordinary_h:g} h, major {standards.sla_major_h:g} h); "
        f"due soon: within {standards.sla_due_soon_h:g} h.",
        p.COUNT, ((None, "green"), (1, "orange"), (5, "red")),
        [sql(f"SELECT {sla_state(standards)} AS sla_state, count(*) AS tickets "
             f"FROM tickets t WHERE t.status IN ({ACTIVE}) AND {IN_VILLAGES} "
             "GROUP BY 1 ORDER BY 1", ("sla_state", "tickets"))], span=span)
    return panel.reduce_options(_all_rows())


def _all_rows() -> common_builders.ReduceDataOptions:
    """Bar per row of a table result, not one reduced value."""
    return common_builders.ReduceDataOptions().values(True).calcs([])


def _variables() -> list[dashboard_builders.QueryVariable]:
    def variable(name: str, label: str, query: str) -> dashboard_builders.QueryVariable:
        return (dashboard_builders.QueryVariable(name).label(label).datasource(TICKETS)
                .query(query).multi(True).include_all(True)
                .refresh(sdk.VariableRefresh.ON_DASHBOARD_LOAD)
                .sort(sdk.VariableSort.NATURAL_ASC)
                .current(sdk.VariableOption(selected=True, text=["All"], value=["$__all"])))

    return [variable("township", "Township", "SELECT id FROM townships ORDER BY id"),
            variable("village", "Village",
                     "SELECT id FROM villages WHERE township_id IN ($township) ORDER BY id")]


def _stats(standards: Standards) -> list[PanelBuilder]:
    active = f"FROM tickets t WHERE t.status IN ({ACTIVE}) AND {IN_VILLAGES}"
    return [
        p.single_stat("Open tickets", "Tickets that still need a crew.", p.COUNT,
                      ((None, "green"), (10, "orange"), (25, "red")),
                      [sql(f"SELECT count(*) AS tickets {active}", ("tickets",))]),
        p.single_stat("SLA breached", "Active tickets past their repair deadline.", p.COUNT,
                      ((None, "green"), (1, "red")),
                      [sql(f"SELECT count(*) AS tickets {active} AND t.due_at < now()",
                           ("tickets",))]),
        p.single_stat("Unassigned", "Active tickets no crew has been given.", p.COUNT,
                      ((None, "green"), (1, "orange"), (5, "red")),
                      [sql(f"SELECT count(*) AS tickets {active} AND t.crew_id IS NULL",
                           ("tickets",))]),
        p.single_stat(
            "Resolved on time", "Share of the tickets resolved in the time range that were "
            "resolved before their deadline.", p.PERCENT,
            ((None, "red"), (80, "orange"), (95, "green")),
            [sql("SELECT 100.0 * count(*) FILTER (WHERE t.resolved_at <= t.due_at) "
                 "/ NULLIF(count(*), 0) AS on_time_pct FROM tickets t "
                 f"WHERE t.resolved_at IS NOT NULL AND $__timeFilter(t.resolved_at) "
                 f"AND {IN_VILLAGES}", ("on_time_pct",))]),
    ]


def _open_tickets(standards: Standards) -> PanelBuilder:
    query = sql(
        "SELECT t.id, t.title, t.type, t.priority, t.sla_class, t.status, "
        f"{sla_state(standards)} AS sla_state, v.township_id AS township, "
        "t.village_id AS village, c.name AS crew, t.due_at, "
        "extract(epoch FROM (t.due_at - now())) / 3600 AS hours_left "
        "FROM tickets t LEFT JOIN villages v ON v.id = t.village_id "
        "LEFT JOIN crews c ON c.id = t.crew_id "
        f"WHERE t.status IN ({ACTIVE}) AND {IN_VILLAGES} ORDER BY t.due_at LIMIT 500",
        ("id", "title", "type", "priority", "sla_class", "status", "sla_state", "township",
         "village", "crew", "due_at", "hours_left"))
    return p.data_table(
        "Open tickets, nearest deadline first",
        "hours_left < 0: the repair commitment is broken.", p.HOURS,
        ((None, "red"), (0, "orange"), (standards.sla_due_soon_h, "green")), [query],
        span=24, height=10)


def _crew_workload(standards: Standards) -> PanelBuilder:
    query = sql(
        "SELECT c.name AS crew, "
        f"count(t.id) AS open_tickets, "
        "count(t.id) FILTER (WHERE t.due_at < now()) AS breached, "
        f"count(t.id) FILTER (WHERE t.due_at < now() + interval '{standards.sla_due_soon_h:g}"
        " hours') AS due_soon "
        f"FROM crews c LEFT JOIN tickets t ON t.crew_id = c.id AND t.status IN ({ACTIVE}) "
        f"AND {IN_VILLAGES} WHERE c.active GROUP BY c.name ORDER BY open_tickets DESC, c.name",
        ("crew", "open_tickets", "breached", "due_soon"))
    return p.bars("Crew workload", "Active tickets per crew; a crew with many breached or "
                  "due-soon tickets needs help or fewer new assignments.", p.COUNT,
                  ((None, "green"), (5, "orange"), (8, "red")), [query]
                  ).reduce_options(_all_rows())


def _flow_per_day() -> PanelBuilder:
    opened = sql("SELECT $__timeGroupAlias(t.created_at, '1d'), count(*) AS opened "
                 f"FROM tickets t WHERE $__timeFilter(t.created_at) AND {IN_VILLAGES} "
                 "GROUP BY 1 ORDER BY 1", ("time", "opened"), time_series=True)
    resolved = sql("SELECT $__timeGroupAlias(t.resolved_at, '1d'), count(*) AS resolved "
                   f"FROM tickets t WHERE $__timeFilter(t.resolved_at) AND {IN_VILLAGES} "
                   "GROUP BY 1 ORDER BY 1", ("time", "resolved"), time_series=True,
                   ref_id="B")
    return p.time_series("Tickets opened and resolved per day",
                         "UTC days; a growing gap is a growing backlog.", p.COUNT, p.NEUTRAL,
                         [opened, resolved], bars=True, minimum=0)


def build(standards: Standards) -> Board:
    board = new_board(UID, "Tickets and crews",
                      "Open repair work against the county's repair commitments, and who "
                      "carries it.", time_from="now-30d", variables=_variables())
    board = board.with_row(dashboard_builders.Row("Now"))
    for panel in _stats(standards):
        board = board.with_panel(panel)
    board = board.with_row(dashboard_builders.Row("Work"))
    board = board.with_panel(tickets_by_sla_state(standards))
    board = board.with_panel(_crew_workload(standards))
    board = board.with_panel(_open_tickets(standards))
    board = board.with_panel(_flow_per_day())
    return finish(board, UID, ("Open tickets by SLA state", "Crew workload",
                               "Tickets opened and resolved per day", "SLA breached"))
