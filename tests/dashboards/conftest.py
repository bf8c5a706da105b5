"""Fixtures: a simulated county as line protocol, loaded into the real InfluxDB; the API's
ticket schema in a fresh PostgreSQL database with the same county's tickets."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, insert

from api.models import Base
from common.influx import InfluxClient
from dashboards.expand import TimeRange
from dashboards.sample import Sample, build_sample, ticket_rows

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def sample() -> Sample:
    """Four simulated days of three villages (75 meters), ending now."""
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
    """A fresh database with the API's schema (create_all) and the sample county's tickets."""
    name = f"ruralwater_dash_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        Base.metadata.create_all(engine)
        rows = ticket_rows(sample.county, sample.incidents, sample.end)
        with engine.begin() as connection:
            for table in ("townships", "villages", "crews", "tickets"):
                connection.execute(insert(Base.metadata.tables[table]), rows[table])
        engine.dispose()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}",
                             autocommit=True) as connection:
            yield connection
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
