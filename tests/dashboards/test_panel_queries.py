"""Every panel query, expanded as Grafana would, returns rows with the expected columns from
the real InfluxDB holding simulator data and the real ticket schema on PostgreSQL."""

from __future__ import annotations

import re

import psycopg
import pytest

from common.influx import InfluxClient
from common.schema import ANALYSIS_FIELDS, FIELDS
from dashboards.boards import all_boards
from dashboards.boards.base import Board
from dashboards.expand import TimeRange
from dashboards.queries import InfluxQLQuery, SqlQuery
from dashboards.runner import BoardRunner, Result

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


def test_current_state_panels_see_the_problems_the_simulator_left_open(
        loaded_influx: InfluxClient, sample_range: TimeRange) -> None:
    board = BOARDS["rw-meter-fleet"]
    runner = BoardRunner(sample_range, influx=loaded_influx)
    results = {r.query.title: r for r in runner.run_board(board.to_json(),
                                                          list(board.queries()))}
    closed = results["Closed valves, monitored households first"]
    assert [tags["severity"] for tags in closed.series_tags] == ["critical"]
    assert results["Closed valves"].rows[0][1] >= 1
    heard = results["Meters heard in the last 3h"].rows[0][1]
    assert 0 < heard < 75  # one meter went offline and stays silent


def test_queries_read_only_measurements_of_the_schema() -> None:
    measurements = set(FIELDS) | set(ANALYSIS_FIELDS)
    for board in BOARDS.values():
        for panel_query in board.queries():
            if isinstance(panel_query.query, InfluxQLQuery):
                text = panel_query.query.query
                named = {part.split('"')[1] for part in text.split("FROM ")[1:]
                         if part.startswith('"')}
                assert named <= measurements, (board.uid, panel_query.title)
