"""A database per backend: SQLite in a temporary file, and PostgreSQL at 127.0.0.1:5432
(a throwaway database for the session) when it answers; tables emptied after each test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import api.models  # noqa: F401 - registers every api/ table on Base
from api.db import Base, make_engine, session_factory
from api.emergency import models as emergency_models  # noqa: F401 - the tables under test
from api.notify import models as notify_models  # noqa: F401 - emergencies notify

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_database() -> Iterator[str | None]:
    name = f"ruralwater_ops_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        yield None
        return
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Engine]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("emergency") / "api.sqlite3"
        engine = make_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    databases = _postgres_database()
    url = next(databases)
    if url is None:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
    next(databases, None)


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as session:
        yield session
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
