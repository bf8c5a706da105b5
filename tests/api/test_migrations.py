"""Alembic: an empty database and the previous schema upgrade to head; models == migrations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from api import migrate
from api.db import make_engine
from api.models import Base
from tests.api.conftest import _create_postgres_database, _drop_postgres_database


@pytest.fixture(scope="module")
def scratch_postgres() -> Iterator[str]:
    """One PostgreSQL database for this module (each DROP DATABASE forces a checkpoint that
    takes seconds on a busy machine), emptied before each test."""
    name = _create_postgres_database()
    try:
        yield name
    finally:
        _drop_postgres_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = request.getfixturevalue("scratch_postgres")
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}",
                         autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def test_every_revision_upgrades_to_head_and_matches_the_models(empty_database: str) -> None:
    config = migrate.alembic_config(empty_database)
    revisions = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    for revision in revisions:  # the previous schema, one step at a time, to head
        migrate.upgrade(empty_database, revision.revision)
    migrate.check(empty_database)  # raises when models and migrations differ
    engine = make_engine(empty_database)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables


def test_downgrade_to_empty_and_back(empty_database: str) -> None:
    from alembic import command

    migrate.upgrade(empty_database)
    command.downgrade(migrate.alembic_config(empty_database), "base")
    migrate.upgrade(empty_database)
    migrate.check(empty_database)


def test_existing_tickets_become_one_problem_each(empty_database: str) -> None:
    """Upgrading a database that has tickets keyed on alerts (before problem keys)."""
    migrate.upgrade(empty_database, "846b6235c08f")
    engine = make_engine(empty_database)
    moment = "2026-07-01 12:00:00+00:00"
    try:
        with engine.begin() as connection:
            for n, key in enumerate(("night_flow:dma-v001", "burst:dma-v001"), start=1):
                connection.execute(text(
                    "INSERT INTO alerts (key, kind, severity, status, title, monitored, "
                    "started_at, detected_at, updated_at, evidence, revision, received_at) "
                    "VALUES (:key, :kind, 'high', 'open', 'leak', false, :t, :t, :t, '{}', 1, "
                    ":t)"), {"key": key, "kind": key.split(":")[0], "t": moment})
                connection.execute(text(
                    "INSERT INTO tickets (id, alert_key, source, type, title, description, "
                    "priority, required_skill, sla_class, status, reporter_name, "
                    "reporter_phone, created_at, updated_at, due_at, resolution_note, "
                    "reopen_count, verification) VALUES (:id, :key, 'alert', 'leak', 'leak', "
                    "'', 'high', 'pipe', 'ordinary', 'open', '', '', :t, :t, :t, '', 0, '{}')"),
                    {"id": n, "key": key, "t": moment})
        migrate.upgrade(empty_database)
        with engine.connect() as connection:
            tickets = connection.execute(text(
                "SELECT id, problem_key, alert_keys FROM tickets ORDER BY id")).all()
            alerts = connection.execute(text(
                "SELECT key, ticket_id FROM alerts ORDER BY ticket_id")).all()
    finally:
        engine.dispose()
    keys = [(row[0], row[1], json.loads(row[2]) if isinstance(row[2], str) else row[2])
            for row in tickets]
    assert keys == [(1, "night_flow:dma-v001", ["night_flow:dma-v001"]),
                    (2, "burst:dma-v001", ["burst:dma-v001"])]
    assert [tuple(row) for row in alerts] == [("night_flow:dma-v001", 1),
                                              ("burst:dma-v001", 2)]
