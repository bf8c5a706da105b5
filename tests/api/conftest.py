"""API test fixtures: every database test runs on SQLite and on PostgreSQL.

``database_url`` is session-scoped and parametrised: a SQLite file, and a fresh PostgreSQL
database ``ruralwater_test_<random>`` on 127.0.0.1:5432 (user postgres, trust), dropped at
the end. Both are brought to the newest schema by Alembic (so every run also tests the
migrations). ``client`` and ``db_session`` empty all tables before each test.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from api import migrate
from api.auth.models import Role, User
from api.auth.security import hash_password, issue_access_token
from api.crews.models import Crew
from api.main import create_app
from api.models import Base
from common.settings import ApiSettings, InfluxSettings, Settings

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
JWT_SECRET = "test-secret-" + "x" * 32
PASSWORD = "correct horse battery"


def _create_postgres_database() -> str:
    name = f"ruralwater_test_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database at the newest schema (Alembic upgrade from empty)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.sqlite3'}"
        migrate.upgrade(url)
        yield url
        return
    name = _create_postgres_database()
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        migrate.upgrade(url)
        yield url
    finally:
        _drop_postgres_database(name)


def api_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    api = ApiSettings(database_url=database_url, jwt_secret=SecretStr(JWT_SECRET),
                      jwt_secret_file=tmp_path / "jwt-secret", notify_loop=False,
                      replan_loop=False, **overrides)  # type: ignore[arg-type]
    return Settings(api=api, influx=InfluxSettings(url="http://127.0.0.1:9", timeout_s=1.0))


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    application = create_app(api_settings(database_url, tmp_path_factory.mktemp("app")))
    yield application
    application.state.engine.dispose()


def empty_all_tables(engine: Engine) -> None:
    present = set(inspect(engine).get_table_names())
    tables = [t for t in Base.metadata.sorted_tables if t.name in present]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                connection.execute(table.delete())


@pytest.fixture
def db_session(app: FastAPI) -> Iterator[Session]:
    empty_all_tables(app.state.engine)
    with app.state.session_factory() as session:
        yield session


@pytest.fixture
def client(app: FastAPI, db_session: Session) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def password_hash() -> str:
    """argon2 is slow on purpose: hash the shared test password once."""
    return hash_password(PASSWORD)


UserFactory = Callable[..., dict[str, str]]


@pytest.fixture
def make_user(db_session: Session, password_hash: str) -> UserFactory:
    """Insert a user and return ``Authorization`` headers with a valid JWT for it."""

    def make(username: str, role: Role, crew_id: int | None = None) -> dict[str, str]:
        db_session.add(User(username=username, role=role, crew_id=crew_id,
                            password_hash=password_hash, full_name=username.title()))
        db_session.commit()
        token = issue_access_token(username=username, secret=JWT_SECRET, minutes=30)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def admin(make_user: UserFactory) -> dict[str, str]:
    return make_user("root", Role.ADMIN)


@pytest.fixture
def dispatcher(make_user: UserFactory) -> dict[str, str]:
    return make_user("dora", Role.DISPATCHER)


@pytest.fixture
def viewer(make_user: UserFactory) -> dict[str, str]:
    return make_user("vic", Role.VIEWER)


@pytest.fixture
def make_crew(db_session: Session) -> Callable[..., Crew]:
    def make(name: str, skills: list[str] | None = None) -> Crew:
        crew = Crew(name=name, skills=skills or ["pipe", "meter"], zones=[],
                    home_latitude=39.0, home_longitude=112.4)
        db_session.add(crew)
        db_session.commit()
        return crew

    return make
