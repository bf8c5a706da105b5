"""Every panel query, expanded as Grafana would, returns rows with the expected columns from
the real InfluxDB holding simulator data and the analysis's output for it, and from the real
ticket schema on PostgreSQL; the alert and plan-level panels agree with what the analysis
decided."""

from __future__ import annotations

import re
from collections import Counter

import psycopg
import pytest

from analysis.sink import PLAN_LEVEL_NUMBER
from common.alerts import Alert, AlertStatus
from common.influx import InfluxClient
from common.schema import ANALYSIS_FIELDS, FIELDS
from dashboards.boards import all_boards
from dashboards.boards.base import Board
from dashboards.boards.county import SEVERITIES
from dashboards.expand import TimeRange
from dashboards.queries import InfluxQLQuery, SqlQuery
from dashboards.runner import BoardRunner, Result
from dashboards.sample import Sample

BOARDS = {board.uid: board for board in all_boards()}
INFLUX_BOARDS = [uid for uid, board in BOARDS.items()
                 if any(isinstance(q.query, InfluxQLQuery) for q in board.queries())]
SQL_BOARDS = [uid for uid, board in BOARDS.items()
              if any(isinstance(q.query, SqlQuery) for q in board.queries())]


def _problems(result: Result) -> list[str]:
    query = result.query.query
    where = f"{result.query.board_uid} / {result.query.title}: {result.text}"
    if not result.rows:
        return [f"no rows: {where}"] if query.expect_rows else []
    problems = []
    if result.columns != list(query.columns):
        problems.append(f"columns {result.columns} != {list(query.columns)}: {where}")
    if isinstance(query, InfluxQLQuery):
        for tags in result.series_tags:
            if set(tags) != set(query.group_tags):
                problems.append(f"series tags {sorted(tags)} != {query.group_tags}: {where}")
    return problems


def _run(board: Board, runner: BoardRunner, kind: type) -> list[Result]:
    queries = [q for q in board.queries() if isinstance(q.query, kind)]
    assert queries
    return runner.run_board(board.to_json(), queries)


@pytest.mark.parametrize("uid", INFLUX_BOARDS)
def test_every_influxql_panel_query_returns_the_expected_columns(
        uid: str, loaded_influx: InfluxClient, sample_range: TimeRange,
        tickets_db: psycopg.Connection) -> None:
    runner = BoardRunner(sample_range, influx=loaded_influx, tickets=tickets_db)
    results = _run(BOARDS[uid], runner, InfluxQLQuery)
    assert [p for result in results for p in _problems(result)] == []
    assert [r.text for r in results if re.search(r"\$(\w|\{)|\[\[", r.text)] == []


@pytest.mark.parametrize("uid", SQL_BOARDS)
def test_every_sql_panel_query_runs_on_the_ticket_schema(
        uid: str, sample_range: TimeRange, tickets_db: psycopg.Connection,
        loaded_influx: InfluxClient) -> None:
    runner = BoardRunner(sample_range, influx=loaded_influx, tickets=tickets_db)
    results = _run(BOARDS[uid], runner, SqlQuery)
    assert [p for result in results for p in _problems(result)] == []


def test_variables_follow_township_to_village_to_dma(
        loaded_influx: InfluxClient, sample_range: TimeRange) -> None:
    runner = BoardRunner(sample_range, influx=loaded_influx)
    variables = runner.resolve_variables(BOARDS["rw-dma-balance"].to_json())
    assert variables["township"].options == ("t01",)
    assert variables["village"].options == ("v001", "v002", "v003")
    assert variables["dma"].options == ("dma-v001", "dma-v002", "dma-v003")
    assert all(v.selected_all for v in variables.values())


def _results(board_uid: str, influx: InfluxClient, time_range: TimeRange) -> dict[str, Result]:
    """Every InfluxQL query's result by panel title, and by ``<title> / <alias>``."""
    board = BOARDS[board_uid]
    runner = BoardRunner(time_range, influx=influx)
    results: dict[str, Result] = {}
    queries = [q for q in board.queries() if isinstance(q.query, InfluxQLQuery)]
    for result in runner.run_board(board.to_json(), queries):
        query = result.query.query
        alias = query.alias if isinstance(query, InfluxQLQuery) else ""
        results.setdefault(result.query.title, result)
        results[f"{result.query.title} / {alias}"] = result
    return results


def _count(result: Result) -> int:
    return int(result.rows[0][1]) if result.rows else 0


def test_current_state_panels_see_the_problems_the_simulator_left_open(
        loaded_influx: InfluxClient, sample_range: TimeRange) -> None:
    results = _results("rw-meter-fleet", loaded_influx, sample_range)
    closed = results["Closed valves, monitored households first"]
    # the scripted zero balance of a monitored household: critical, listed once
    assert [row[1] for row in closed.rows] == ["critical"]
    assert results["Closed valves"].rows[0][1] >= 1
    heard = results["Meters heard in the last 3h"].rows[0][1]
    assert 0 < heard < 75  # one meter went offline and stays silent


def _latest_alerts(sample: Sample) -> dict[tuple[str, str, str, str], Alert]:
    """The analysis's latest alert change per ``alert`` series place (kind, village, dma,
    device), as the tracker made them."""
    latest: dict[tuple[str, str, str, str], Alert] = {}
    for _, change in sample.changes():
        place = change.alert.place
        latest[(change.alert.kind.value, place.village or "", place.dma or "",
                place.device or place.household or "")] = change.alert
    return latest


def test_alert_panels_count_each_open_alert_once_at_its_latest_severity(
        loaded_influx: InfluxClient, sample_range: TimeRange, sample: Sample) -> None:
    severities: dict[str, set[str]] = {}
    for _, change in sample.changes():
        severities.setdefault(change.alert.key, set()).add(change.alert.severity.value)
    assert any(len(seen) > 1 for seen in severities.values()), "no alert escalated"
    open_alerts = [a for a in _latest_alerts(sample).values() if a.status is AlertStatus.OPEN]
    results = _results("rw-county-overview", loaded_influx, sample_range)
    assert _count(results["Open alerts"]) == len(open_alerts)
    for severity in SEVERITIES:
        expected = sum(a.severity.value == severity for a in open_alerts)
        assert _count(results[f"Open alerts by severity / {severity}"]) == expected, severity
    assert _count(results["Critical alerts open"]) == sum(
        a.severity.value == "critical" for a in open_alerts)
    by_kind = {tags["kind"]: rows[0][1]
               for tags, _, rows in results["Open alerts by kind"].series}
    assert by_kind == dict(Counter(a.kind.value for a in open_alerts))


def test_plan_levels_on_the_county_overview_are_the_analysis_levels(
        loaded_influx: InfluxClient, sample_range: TimeRange, sample: Sample) -> None:
    shortages = [change.alert for _, change in sample.changes()
                 if change.alert.kind.value == "shortage"]
    assert {a.plan_level for a in shortages} & {"IV", "III", "II", "I"}
    results = _results("rw-county-overview", loaded_influx, sample_range)
    table = results["Villages by supply status"]
    level_of = {tags["village"]: rows[-1][1] for tags, _, rows in table.series}
    final = {a.place.village or "": a for a in shortages}
    for village, alert in final.items():
        expected = PLAN_LEVEL_NUMBER[alert.plan_level] if alert.plan_level and \
            alert.status is AlertStatus.OPEN else 0
        assert level_of[village] == expected, village
    assert _count(results["Villages at an emergency plan level"]) == sum(
        level > 0 for level in level_of.values())


def test_queries_read_only_measurements_of_the_schema() -> None:
    measurements = set(FIELDS) | set(ANALYSIS_FIELDS)
    for board in BOARDS.values():
        for panel_query in board.queries():
            if isinstance(panel_query.query, InfluxQLQuery):
                text = panel_query.query.query
                named = {part.split('"')[1] for part in text.split("FROM ")[1:]
                         if part.startswith('"')}
                assert named <= measurements, (board.uid, panel_query.title)
