"""Fixtures: a simulated county and the real analysis's output for it, as line protocol,
loaded into the real InfluxDB; the API's ticket tables on PostgreSQL holding the tickets the
ticket service made from the same analysis's alerts."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from common.influx import InfluxClient
from dashboards.expand import TimeRange
from dashboards.sample import Sample, build_sample
from dashboards.ticketdb import POSTGRES_ADMIN, replay_tickets, ticket_database


@pytest.fixture(scope="session")
def sample() -> Sample:
    """Four simulated days of three villages (75 meters), ending now, analysed."""
    return build_sample()


@pytest.fixture
def sample_range(sample: Sample) -> TimeRange:
    return TimeRange(sample.start, sample.end)


@pytest.fixture
def loaded_influx(influx: InfluxClient, sample: Sample) -> InfluxClient:
    sample.load(influx)
    return influx


@pytest.fixture(scope="session")
def tickets_db(sample: Sample) -> Iterator[psycopg.Connection]:
    """The API's tables in a throw-away PostgreSQL schema, filled by replaying the sample's
    alert changes through the ticket service (intake, planner, crews' work)."""
    with ticket_database(POSTGRES_ADMIN) as database:
        replay_tickets(database.sessions, sample)
        yield database.connection
