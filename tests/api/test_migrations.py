"""Alembic: an empty database and the previous schema upgrade to head; models == migrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from api import migrate
from api.db import make_engine
from api.models import Base
from tests.api.conftest import _create_postgres_database, _drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = _create_postgres_database()
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        _drop_postgres_database(name)


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
