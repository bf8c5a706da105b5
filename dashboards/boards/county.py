"""County overview: where every village stands on supply, alerts and the emergency plan."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from dashboards import panels as p
from dashboards.boards.base import IN_VILLAGES, Board, PanelBuilder, finish, new_board
from dashboards.boards.tickets import tickets_by_sla_state
from dashboards.queries import influxql
from dashboards.standards import Standards
from dashboards.variables import township, village

UID = "rw-county-overview"


def _latest_outlook(standards: Standards) -> str:
    """The latest supply outlook per village (a subquery the stats count over)."""
    return ('SELECT last("plan_level") AS "level", last("litres_per_person_day") AS "lpcd" '
            f'FROM "supply_outlook" WHERE {IN_VILLAGES} AND $timeFilter GROUP BY "village"')


#: alert severities, most severe first (common.alerts.Severity)
SEVERITIES = ("critical", "high", "medium", "low")


def _alert_states(standards: Standards) -> str:
    """Each alert's latest change: its ``open`` flag and its severity then, as ``level``.

    An alert is one series (tag ``alert_key``), its severity a field: grouping by the key
    counts two alerts of one kind on one device apart, and an escalated alert once, at its
    latest severity. ``kind`` rides along for the panels that group by it (a key never
    changes kind).
    """
    return ('SELECT last("open") AS "open", "severity" AS "level" FROM "alert" WHERE '
            f"{IN_VILLAGES} AND time > now() - {standards.current_state_lookback} "
            'GROUP BY "kind", "alert_key"')


def _open_at(standards: Standards, severity: str) -> str:
    """How many alerts are open at ``severity`` now (InfluxQL cannot group by a field)."""
    return (f'SELECT count("open") FROM ({_alert_states(standards)}) '
            f"""WHERE "open" = true AND "level" = '{severity}'""")


def _stats(standards: Standards) -> list[PanelBuilder]:
    outlook = _latest_outlook(standards)
    return [
        p.single_stat(
            "Villages at an emergency plan level",
            "Villages whose latest supply outlook calls for plan level IV or above.",
            p.COUNT, ((None, "green"), (1, "red")),
            [influxql(f'SELECT count("level") FROM ({outlook}) WHERE "level" > 0',
                      ("time", "count"))]),
        p.single_stat(
            f"Villages below {standards.supply_min_lpcd:g} L/person/day",
            "T/CHES 18-2018: at least 20 L per person per day where water is scarce.",
            p.COUNT, ((None, "green"), (1, "red")),
            [influxql(f'SELECT count("lpcd") FROM ({outlook}) '
                      f'WHERE "lpcd" < {standards.supply_min_lpcd:g}', ("time", "count"),
                      expect_rows=False)]),
        p.single_stat(
            "Open alerts", "Alerts whose latest change left them open.",
            p.COUNT, ((None, "green"), (1, "orange"), (10, "red")),
            [influxql(f'SELECT count("open") FROM ({_alert_states(standards)}) '
                      'WHERE "open" = true', ("time", "count"))]),
        p.single_stat(
            "Critical alerts open", "People without water, or unsafe water.",
            p.COUNT, ((None, "green"), (1, "red")),
            [influxql(_open_at(standards, "critical"), ("time", "count"))]),
    ]


def _villages_table(standards: Standards) -> PanelBuilder:
    query = influxql(
        'SELECT last("plan_level") AS "plan_level", last("litres_per_person_day") AS '
        '"litres_per_person_day", last("days_to_shortfall") AS "days_to_shortfall", '
        'last("guarantee_rate_pct") AS "guarantee_rate_pct", last("well_margin_m") AS '
        f'"well_margin_m" FROM "supply_outlook" WHERE {IN_VILLAGES} AND $timeFilter '
        'GROUP BY "township", "village"',
        ("time", "plan_level", "litres_per_person_day", "days_to_shortfall",
         "guarantee_rate_pct", "well_margin_m"), tags=("township", "village"), table=True)
    panel = p.data_table(
        "Villages by supply status",
        "Latest supply outlook per village: plan level, water per person, days until demand "
        "outruns the source, guarantee rate and water left above the pump intakes.",
        p.LPCD, ((None, "red"), (standards.supply_min_lpcd, "yellow"),
                 (standards.supply_ample_lpcd, "green")),
        [query], sort_by="litres_per_person_day",
        column_mappings={"plan_level": p.plan_level_mappings()},
        columns={
            "plan_level": (p.COUNT, p.NEUTRAL),
            "days_to_shortfall": (p.DAYS, (
                (None, "red"), (standards.days_to_shortfall_critical, "orange"),
                (standards.days_to_shortfall_warn, "green"))),
            "guarantee_rate_pct": (p.PERCENT, (
                (None, "red"), (standards.guarantee_rate_min_pct, "green"))),
            "well_margin_m": (p.METRES, (
                (None, "red"), (standards.well_margin_critical_m, "orange"),
                (standards.well_margin_warn_m, "green"))),
        })
    return panel


def build(standards: Standards) -> Board:
    offset = f"-{standards.utc_offset_hours}h"
    board = new_board(
        UID, "County overview",
        "Where every village stands: supply against the standard, the emergency plan, open "
        "alerts and repair tickets.", time_from="now-7d", variables=[township(), village()])
    board = board.with_row(dashboard_builders.Row("Now"))
    for panel in _stats(standards):
        board = board.with_panel(panel)
    board = board.with_row(dashboard_builders.Row("Supply"))
    board = board.with_panel(p.time_series(
        "Supply per person against the standard",
        f"Litres per person per day by village; lines at {standards.supply_min_lpcd:g} L "
        f"(water-scarce areas) and {standards.supply_ample_lpcd:g} L (ample water).",
        p.LPCD, ((None, "red"), (standards.supply_min_lpcd, "yellow"),
                 (standards.supply_ample_lpcd, "green")),
        [influxql('SELECT mean("litres_per_person_day") FROM "supply_outlook" WHERE '
                  f'{IN_VILLAGES} AND $timeFilter GROUP BY time($__interval), "village" '
                  'fill(none)', ("time", "mean"), tags=("village",), alias="$tag_village")],
        minimum=0))
    board = board.with_panel(p.state_timeline(
        "Emergency plan level",
        "Seasonal shortage plan level the supply outlook calls for: IV blue, III yellow, "
        "II orange, I red.", p.COUNT, p.NEUTRAL,
        [influxql('SELECT last("plan_level") FROM "supply_outlook" WHERE '
                  f'{IN_VILLAGES} AND $timeFilter GROUP BY time(6h, {offset}), "village" '
                  'fill(previous)', ("time", "last"), tags=("village",),
                  alias="$tag_village")],
        mappings=p.plan_level_mappings()))
    board = board.with_panel(_villages_table(standards))
    board = board.with_row(dashboard_builders.Row("Alerts and tickets"))
    board = board.with_panel(p.bars(
        "Open alerts by kind", "Leaks, shortages, water quality and device problems.",
        p.COUNT, ((None, "green"), (1, "orange"), (5, "red")),
        [influxql(f'SELECT count("open") FROM ({_alert_states(standards)}) '
                  'WHERE "open" = true GROUP BY "kind"', ("time", "count"), tags=("kind",),
                  alias="$tag_kind")], span=8))
    board = board.with_panel(p.bars(
        "Open alerts by severity", "critical: people without water, or unsafe water.",
        p.COUNT, ((None, "green"), (1, "orange"), (5, "red")),
        [influxql(_open_at(standards, severity), ("time", "count"), alias=severity,
                  ref_id=chr(ord("A") + index), expect_rows=False)
         for index, severity in enumerate(SEVERITIES)], span=8))
    board = board.with_panel(tickets_by_sla_state(standards, span=8))
    return finish(board, UID, ("Villages at an emergency plan level",
                               "Supply per person against the standard",
                               "Emergency plan level", "Open alerts by kind"))
