"""Panel queries the SDK has no builder for: raw InfluxQL and raw PostgreSQL SQL.

The foundation SDK ships no InfluxDB or PostgreSQL query types, so these implement its
``Dataquery`` variant and ``Builder`` protocol. Each query also carries what it must return
(``columns``, and for InfluxQL the tags it groups by); Grafana never sees those, the tests
check them against real databases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as sdk

#: Provisioned data sources: their names (what deploy looks up) and fixed uids.
INFLUX_NAME: Final = "InfluxDB"
INFLUX_UID: Final = "ruralwater-influxdb"
TICKETS_NAME: Final = "Tickets"
TICKETS_UID: Final = "ruralwater-tickets"
INFLUX_TYPE: Final = "influxdb"
POSTGRES_TYPE: Final = "grafana-postgresql-datasource"

#: the InfluxDB data source's minimum interval (jsonData.timeInterval): the finest cadence
#: in the data (pumps and tanks every 5 minutes), so $__interval never splits below it
INFLUX_MIN_INTERVAL: Final = "5m"

INFLUX: Final = sdk.DataSourceRef(type_val=INFLUX_TYPE, uid=INFLUX_UID)
TICKETS: Final = sdk.DataSourceRef(type_val=POSTGRES_TYPE, uid=TICKETS_UID)

ResultFormat = Literal["time_series", "table"]


@dataclass
class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target (the InfluxDB data source in InfluxQL mode)."""

    query: str
    columns: tuple[str, ...]
    group_tags: tuple[str, ...] = ()
    result_format: ResultFormat = "time_series"
    alias: str = ""
    ref_id: str = "A"
    #: False when the query may legitimately return nothing on healthy data (e.g. faults)
    expect_rows: bool = True

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": INFLUX.to_json(),
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        return payload


@dataclass
class SqlQuery(cogvariants.Dataquery):
    """A raw SQL target on the PostgreSQL ticket database."""

    sql: str
    columns: tuple[str, ...]
    result_format: ResultFormat = "table"
    ref_id: str = "A"
    expect_rows: bool = True
    params: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": TICKETS.to_json(),
            "editorMode": "code",
            "format": self.result_format,
            "rawQuery": True,
            "rawSql": self.sql,
            "refId": self.ref_id,
        }


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    def __init__(self, query: InfluxQLQuery) -> None:
        self._query = query

    def build(self) -> InfluxQLQuery:
        return self._query


class Sql(cogbuilder.Builder[SqlQuery]):
    def __init__(self, query: SqlQuery) -> None:
        self._query = query

    def build(self) -> SqlQuery:
        return self._query


def influxql(query: str, columns: tuple[str, ...], *, tags: tuple[str, ...] = (),
             table: bool = False, alias: str = "", ref_id: str = "A",
             expect_rows: bool = True) -> InfluxQL:
    """A raw InfluxQL target returning ``columns`` (``time`` first), one series per ``tags``."""
    return InfluxQL(InfluxQLQuery(
        query=" ".join(query.split()), columns=columns, group_tags=tags,
        result_format="table" if table else "time_series", alias=alias, ref_id=ref_id,
        expect_rows=expect_rows))


def sql(query: str, columns: tuple[str, ...], *, time_series: bool = False,
        ref_id: str = "A", expect_rows: bool = True) -> Sql:
    """A raw SQL target returning ``columns``."""
    return Sql(SqlQuery(sql=" ".join(query.split()), columns=columns,
                        result_format="time_series" if time_series else "table",
                        ref_id=ref_id, expect_rows=expect_rows))
