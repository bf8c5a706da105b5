"""Run a board's queries as Grafana would: resolve its variables, expand, query, collect.

Used by the tests (every panel query against real InfluxDB and PostgreSQL) and by the
preview renderer. Variables are resolved in dashboard order with their default selection
(``All``), each query expanded by :mod:`dashboards.expand` before it reaches the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from common.influx import InfluxClient
from dashboards.boards.base import PanelQuery
from dashboards.expand import (
    DEFAULT_MAX_DATA_POINTS,
    TimeRange,
    Variable,
    calculate_interval_ms,
    expand_influxql,
    expand_sql,
    influx_formatter,
    interpolate_variables,
    sql_formatter,
)
from dashboards.queries import INFLUX_MIN_INTERVAL, INFLUX_UID, InfluxQLQuery, SqlQuery

ALL: Final = "$__all"


class SqlConnection(Protocol):
    """What the runner needs from a DB-API connection (psycopg's)."""

    def execute(self, query: str) -> Any: ...


@dataclass
class Result:
    """One query's expanded text and what came back, as a table."""

    query: PanelQuery
    text: str
    columns: list[str]
    rows: list[list[Any]]
    #: InfluxQL: one entry per series, its tags
    series_tags: list[dict[str, str]] = field(default_factory=list)
    #: InfluxQL time series: (tags, columns, rows) per series
    series: list[tuple[dict[str, str], list[str], list[list[Any]]]] = field(
        default_factory=list)


def _natural_key(text: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class BoardRunner:
    """Runs board queries for one time range against the databases given."""

    def __init__(self, time_range: TimeRange, *, influx: InfluxClient | None = None,
                 tickets: SqlConnection | None = None,
                 max_data_points: int = DEFAULT_MAX_DATA_POINTS) -> None:
        self.time_range = time_range
        self.influx = influx
        self.tickets = tickets
        self.interval_ms = calculate_interval_ms(time_range, max_data_points,
                                                 INFLUX_MIN_INTERVAL)

    # ----------------------------------------------------------------- variables

    def _variable_values(self, definition: Mapping[str, Any], text: str) -> list[str]:
        source = (definition.get("datasource") or {}).get("uid")
        if source == INFLUX_UID:
            if self.influx is None:
                raise RuntimeError("this board needs InfluxDB")
            values = [str(row[-1]) for series in self.influx.query(text)
                      for row in series.values]
        else:
            if self.tickets is None:
                raise RuntimeError("this board needs the ticket database")
            values = [str(row[0]) for row in self.tickets.execute(text).fetchall()]
        unique = list(dict.fromkeys(values))
        return sorted(unique, key=_natural_key) if definition.get("sort") else unique

    def resolve_variables(self, board: Mapping[str, Any]) -> dict[str, Variable]:
        """Every template variable with its options and default selection."""
        resolved: dict[str, Variable] = {}
        for definition in board.get("templating", {}).get("list", []):
            source = (definition.get("datasource") or {}).get("uid")
            formatter = influx_formatter if source == INFLUX_UID else sql_formatter
            text = interpolate_variables(str(definition["query"]), resolved, formatter)
            options = tuple(self._variable_values(definition, text))
            current = definition.get("current") or {}
            value = current.get("value", [ALL])
            selected = tuple(value if isinstance(value, list) else [value])
            resolved[definition["name"]] = Variable(
                name=definition["name"], options=options,
                selected=options[:1] if ALL in selected else selected,
                multi=bool(definition.get("multi")),
                include_all=bool(definition.get("includeAll")),
                all_value=definition.get("allValue"), selected_all=ALL in selected)
        return resolved

    # ----------------------------------------------------------------- queries

    def run(self, panel_query: PanelQuery, variables: Mapping[str, Variable]) -> Result:
        query = panel_query.query
        if isinstance(query, InfluxQLQuery):
            return self._run_influxql(panel_query, query, variables)
        return self._run_sql(panel_query, query, variables)

    def _run_influxql(self, panel_query: PanelQuery, query: InfluxQLQuery,
                      variables: Mapping[str, Variable]) -> Result:
        if self.influx is None:
            raise RuntimeError("InfluxQL panel without an InfluxDB client")
        text = expand_influxql(query.query, self.time_range, variables, self.interval_ms)
        result = Result(panel_query, text, [], [])
        for series in self.influx.query(text):
            result.columns = list(series.columns)
            result.rows.extend(series.values)
            result.series_tags.append(dict(series.tags))
            result.series.append((dict(series.tags), list(series.columns),
                                  [list(row) for row in series.values]))
        return result

    def _run_sql(self, panel_query: PanelQuery, query: SqlQuery,
                 variables: Mapping[str, Variable]) -> Result:
        if self.tickets is None:
            raise RuntimeError("SQL panel without a ticket database connection")
        text = expand_sql(query.sql, self.time_range, variables, self.interval_ms)
        cursor = self.tickets.execute(text)
        columns = [column.name for column in cursor.description]
        return Result(panel_query, text, columns, [list(row) for row in cursor.fetchall()])

    def run_board(self, board: Mapping[str, Any],
                  queries: Sequence[PanelQuery]) -> list[Result]:
        variables = self.resolve_variables(board)
        return [self.run(query, variables) for query in queries]
