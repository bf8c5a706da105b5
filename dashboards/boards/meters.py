"""Meter fleet: silent meters, low batteries, closed valves (monitored households first), tamper.

A meter's current state is its last reading in the time range. Silent meters are found by
their last reading's time (meters report hourly); the analysis also raises ``device_silent``
alerts. The monitoring list is not a telemetry tag: closed valves in monitored households are
the ``valve_closed`` alerts the analysis raises at a higher severity.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from dashboards import panels as p
from dashboards.boards.base import IN_VILLAGES, Board, PanelBuilder, finish, new_board
from dashboards.queries import influxql
from dashboards.standards import Standards
from dashboards.variables import township, village

UID = "rw-meter-fleet"


def _latest(field: str, alias: str) -> str:
    return (f'SELECT last("{field}") AS "{alias}" FROM "meter" WHERE {IN_VILLAGES} '
            'AND $timeFilter GROUP BY "device", "village"')


def _stats(standards: Standards) -> list[PanelBuilder]:
    silent_after = f"{standards.meter_silent_after_h}h"
    return [
        p.single_stat(
            f"Meters heard in the last {silent_after}",
            "Meters with a reading in the last hours (they report hourly).", p.COUNT,
            p.NEUTRAL,
            [influxql('SELECT count("v") FROM (SELECT last("volume_m3") AS "v" FROM "meter" '
                      f'WHERE {IN_VILLAGES} AND time > now() - {silent_after} '
                      'GROUP BY "device")', ("time", "count"))]),
        p.single_stat(
            "Closed valves", "Prepaid meters whose valve is closed now (zero balance, low "
            "battery or tamper).", p.COUNT, ((None, "green"), (1, "orange")),
            [influxql(f'SELECT count("valve") FROM ({_latest("valve", "valve")}) '
                      """WHERE "valve" = 'closed'""", ("time", "count"))]),
        p.single_stat(
            "Low battery", "Meters reporting a low battery now.", p.COUNT,
            ((None, "green"), (1, "orange")),
            [influxql(f'SELECT count("b") FROM ({_latest("battery_low", "b")}) '
                      'WHERE "b" = true', ("time", "count"))]),
        p.single_stat(
            "Tamper", "Meters reporting magnetic tamper now.", p.COUNT,
            ((None, "green"), (1, "red")),
            [influxql(f'SELECT count("t") FROM ({_latest("tamper", "t")}) WHERE "t" = true',
                      ("time", "count"))]),
    ]


def build(standards: Standards) -> Board:
    board = new_board(
        UID, "Meter fleet",
        "Household prepaid meters: which are silent, low on battery, closed or tampered "
        "with; closed valves in monitored households first.", time_from="now-2d",
        variables=[township(), village()])
    board = board.with_row(dashboard_builders.Row("Now"))
    for panel in _stats(standards):
        board = board.with_panel(panel)
    board = board.with_row(dashboard_builders.Row("Valves"))
    board = board.with_panel(p.data_table(
        "Closed valves, monitored households first",
        "Open valve_closed alerts, most severe first (level: the severity of the alert's "
        "latest change): the analysis raises it for households on the social monitoring "
        "list, whose water must never be cut off.",
        p.COUNT, p.NEUTRAL,
        [influxql('SELECT "level", "title", "key" FROM (SELECT last("open") AS "open", '
                  '"severity" AS "level", "title", "key" FROM "alert" WHERE '
                  f"{IN_VILLAGES} AND \"kind\" = 'valve_closed' AND time > now() - "
                  f'{standards.current_state_lookback} GROUP BY "village", "device", "alert_key") '
                  'WHERE "open" = true GROUP BY "village", "device"',
                  ("time", "level", "title", "key"), tags=("village", "device"),
                  table=True)],
        sort_by="level"))
    board = board.with_panel(p.data_table(
        "Meters with a closed valve",
        "Telemetry: every meter whose latest reading has the valve closed, and its prepaid "
        "balance (yuan).", p.YUAN, ((None, "red"), (0.01, "green")),
        [influxql('SELECT "valve", "balance_yuan" FROM (SELECT last("valve") AS "valve", '
                  'last("balance_yuan") AS "balance_yuan" FROM "meter" WHERE '
                  f'{IN_VILLAGES} AND $timeFilter GROUP BY "device", "village") '
                  """WHERE "valve" = 'closed' GROUP BY "device", "village\"""",
                  ("time", "valve", "balance_yuan"), tags=("device", "village"), table=True)],
        sort_by="balance_yuan"))
    board = board.with_row(dashboard_builders.Row("Health"))
    board = board.with_panel(p.data_table(
        "Meters by last reading, oldest first",
        f"A meter whose last reading is more than {standards.meter_silent_after_h} h old is "
        "silent: battery, radio or gateway.", p.M3, p.NEUTRAL,
        [influxql(_latest("volume_m3", "volume_m3"), ("time", "volume_m3"),
                  tags=("device", "village"), table=True)],
        sort_by="Time"))
    board = board.with_panel(p.data_table(
        "Low battery or tamper",
        "Meters whose latest reading reports a low battery or magnetic tamper.", p.YUAN,
        p.NEUTRAL,
        [influxql('SELECT "battery_low", "tamper", "balance_yuan" FROM (SELECT '
                  'last("battery_low") AS "battery_low", last("tamper") AS "tamper", '
                  'last("balance_yuan") AS "balance_yuan" FROM "meter" WHERE '
                  f'{IN_VILLAGES} AND $timeFilter GROUP BY "device", "village") WHERE '
                  '"battery_low" = true OR "tamper" = true GROUP BY "device", "village"',
                  ("time", "battery_low", "tamper", "balance_yuan"),
                  tags=("device", "village"), table=True)]))
    board = board.with_panel(p.time_series(
        "Meter events per hour",
        "Device events the gateways report for meters, by code (valve_closed, low_battery, "
        "tamper...).", p.COUNT, p.NEUTRAL,
        [influxql("""SELECT count("active") FROM "event" WHERE "device_kind" = 'meter' AND """
                  f'{IN_VILLAGES} AND $timeFilter GROUP BY time(1h), "code" fill(none)',
                  ("time", "count"), tags=("code",), alias="$tag_code")],
        bars=True, minimum=0, span=24))
    return finish(board, UID, ("Closed valves", "Low battery", "Meter events per hour",
                               "Closed valves, monitored households first"))
