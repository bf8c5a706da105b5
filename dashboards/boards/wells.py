"""Wells and pumps: flow, depth to water against the intake, running hours, drive faults."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from dashboards import panels as p
from dashboards.boards.base import IN_VILLAGES, Board, finish, new_board
from dashboards.queries import influxql
from dashboards.standards import Standards
from dashboards.variables import township, village

UID = "rw-wells-pumps"


def build(standards: Standards) -> Board:
    pumps = f'FROM "pump" WHERE {IN_VILLAGES} AND $timeFilter'
    per_interval = 'GROUP BY time($__interval), "device"'
    board = new_board(
        UID, "Wells and pumps",
        "Each well's submersible pump drive: what it delivers, how far the water is drawn "
        "down, how long it runs, and its fault word.", time_from="now-2d",
        variables=[township(), village()])
    board = board.with_row(dashboard_builders.Row("Delivery"))
    board = board.with_panel(p.time_series(
        "Pump flow", "Delivered flow per well, m³/h (mean per interval).", p.M3_PER_H,
        p.NEUTRAL,
        [influxql(f'SELECT mean("flow_m3h") {pumps} {per_interval} fill(none)',
                  ("time", "mean"), tags=("device",), alias="$tag_device")], minimum=0))
    board = board.with_panel(p.time_series(
        "Run hours per local day",
        f"Hours each pump ran per local day; above {standards.pump_hours_per_day_warn:g} h "
        "the source has little reserve.", p.HOURS,
        ((None, "green"), (standards.pump_hours_per_day_warn, "orange")),
        [influxql(f'SELECT spread("run_hours") {pumps} GROUP BY '
                  f'time(1d, -{standards.utc_offset_hours}h), "device" fill(none)',
                  ("time", "spread"), tags=("device",), alias="$tag_device")],
        bars=True, minimum=0))
    board = board.with_row(dashboard_builders.Row("Groundwater"))
    board = board.with_panel(p.time_series(
        "Depth to water",
        "Well water level, m below ground (larger is deeper; the intake depth of each well "
        "is in the register, the margin above it is the next panel).", p.METRES, p.NEUTRAL,
        [influxql(f'SELECT max("well_level_m") {pumps} {per_interval} fill(none)',
                  ("time", "max"), tags=("device",), alias="$tag_device")]))
    board = board.with_panel(p.time_series(
        "Water above the pump intake",
        f"Smallest margin between the water level and the intake over the village's wells, "
        f"m (analysis output); below {standards.well_margin_critical_m:g} m the pump risks "
        "running dry.", p.METRES,
        ((None, "red"), (standards.well_margin_critical_m, "orange"),
         (standards.well_margin_warn_m, "green")),
        [influxql('SELECT min("well_margin_m") FROM "supply_outlook" WHERE '
                  f'{IN_VILLAGES} AND $timeFilter GROUP BY time($__interval), "village" '
                  'fill(none)', ("time", "min"), tags=("village",), alias="$tag_village")]))
    board = board.with_row(dashboard_builders.Row("Drives"))
    board = board.with_panel(p.state_timeline(
        "Drive fault codes", "The drive's fault word; 0 is healthy.", p.COUNT,
        ((None, "green"), (1, "red")),
        [influxql(f'SELECT max("fault_code") {pumps} {per_interval} fill(previous)',
                  ("time", "max"), tags=("device",), alias="$tag_device")],
        mappings=p.text_mappings({"0": "green"})))
    board = board.with_panel(p.state_timeline(
        "Running", "Pump running (true) or stopped (false) at the end of each interval.",
        p.COUNT, p.NEUTRAL,
        [influxql(f'SELECT last("running") {pumps} {per_interval} fill(previous)',
                  ("time", "last"), tags=("device",), alias="$tag_device")],
        mappings=p.text_mappings({"true": "green", "false": "text"})))
    board = board.with_panel(p.data_table(
        "Drive readings, latest",
        "Latest drive values per well: fault word, frequency (Hz), current (A), outlet "
        "pressure (MPa) and cumulative run hours.", p.COUNT,
        ((None, "green"), (1, "red")),
        [influxql('SELECT last("fault_code") AS "fault_code", last("frequency_hz") AS '
                  '"frequency_hz", last("current_a") AS "current_a", last("outlet_pressure_mpa")'
                  ' AS "outlet_pressure_mpa", last("run_hours") AS "run_hours" '
                  f'{pumps} GROUP BY "device"',
                  ("time", "fault_code", "frequency_hz", "current_a", "outlet_pressure_mpa",
                   "run_hours"), tags=("device",), table=True)],
        sort_by="fault_code", descending=True, span=24, height=7,
        columns={"frequency_hz": (p.HERTZ, p.NEUTRAL), "current_a": (p.AMPERES, p.NEUTRAL),
                 "outlet_pressure_mpa": (p.MPA, p.NEUTRAL), "run_hours": (p.HOURS, p.NEUTRAL)}))
    return finish(board, UID, ("Pump flow", "Depth to water", "Water above the pump intake",
                               "Run hours per local day"))
