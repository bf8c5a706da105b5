"""DMA water balance: inflow against consumption, night flow against its baseline, NRW %."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from dashboards import panels as p
from dashboards.boards.base import IN_DMAS, Board, finish, new_board
from dashboards.queries import influxql
from dashboards.standards import Standards
from dashboards.variables import place_variables

UID = "rw-dma-balance"


def build(standards: Standards) -> Board:
    nrw_steps = ((None, "green"), (standards.nrw_grade_1_pct, "yellow"),
                 (standards.nrw_grade_2_pct, "red"))
    kpi = f'FROM "dma_kpi" WHERE {IN_DMAS} AND $timeFilter GROUP BY "dma"'
    board = new_board(
        UID, "DMA water balance",
        "Per district metered area and local day: what went in, what the meters registered, "
        "what was lost; the 02:00-04:00 minimum night flow against its rolling baseline.",
        time_from="now-30d", variables=place_variables())
    board = board.with_row(dashboard_builders.Row("Water balance"))
    board = board.with_panel(p.time_series(
        "Daily inflow against consumption",
        "Bulk inflow meter against the sum of the household meters, m³ per local day "
        "(analysis output).", p.M3, p.NEUTRAL,
        [influxql(f'SELECT "inflow_m3" AS "inflow", "consumption_m3" AS "consumption" {kpi}',
                  ("time", "inflow", "consumption"), tags=("dma",),
                  alias="$tag_dma $col")], bars=True, minimum=0))
    board = board.with_panel(p.time_series(
        "Non-revenue water",
        f"Share of the inflow not registered by household meters, %; CJJ 92-2016 grades at "
        f"{standards.nrw_grade_1_pct:g} % and {standards.nrw_grade_2_pct:g} %.",
        p.PERCENT, nrw_steps,
        [influxql(f'SELECT "nrw_pct" {kpi}', ("time", "nrw_pct"), tags=("dma",),
                  alias="$tag_dma")], minimum=0))
    board = board.with_panel(p.time_series(
        "Bulk inflow",
        "Raw DMA inlet meter flow, m³/h (telemetry, mean per interval).", p.M3_PER_H,
        p.NEUTRAL,
        [influxql('SELECT mean("flow_m3h") FROM "dma_inflow" WHERE '
                  f'{IN_DMAS} AND $timeFilter GROUP BY time($__interval), "dma" fill(none)',
                  ("time", "mean"), tags=("dma",), alias="$tag_dma")], minimum=0))
    board = board.with_row(dashboard_builders.Row("Leaks"))
    board = board.with_panel(p.time_series(
        "Minimum night flow against its baseline",
        "Minimum inflow between 02:00 and 04:00 local time, m³/h; a night well above its "
        "baseline is a new leak or burst.", p.M3_PER_H, p.NEUTRAL,
        [influxql(f'SELECT "night_flow_m3h" AS "night flow", "night_baseline_m3h" AS '
                  f'"baseline" {kpi}', ("time", "night flow", "baseline"), tags=("dma",),
                  alias="$tag_dma $col")], minimum=0))
    board = board.with_panel(p.bars(
        "NRW by DMA, latest day", "Non-revenue water of each DMA's latest complete day, %.",
        p.PERCENT, nrw_steps,
        [influxql(f'SELECT last("nrw_pct") {kpi}', ("time", "last"), tags=("dma",),
                  alias="$tag_dma")], span=12))
    board = board.with_panel(p.data_table(
        "Leakage indicators, latest day",
        "Per DMA: losses in m³, litres per connection per day, and the infrastructure "
        "leakage index (current real losses / unavoidable annual real losses).", p.M3,
        p.NEUTRAL,
        [influxql('SELECT last("nrw_m3") AS "nrw_m3", last("litres_per_connection_day") AS '
                  '"litres_per_connection_day", last("ili") AS "ili", last("nrw_pct") AS '
                  f'"nrw_pct" {kpi}', ("time", "nrw_m3", "litres_per_connection_day", "ili",
                                        "nrw_pct"), tags=("dma",), table=True)],
        sort_by="nrw_pct", descending=True, span=24))
    return finish(board, UID, ("Daily inflow against consumption", "Non-revenue water",
                               "Minimum night flow against its baseline", "Bulk inflow"))
