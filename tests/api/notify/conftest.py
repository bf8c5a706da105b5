"""Fixtures for the notification tests: a recording HTTP server, a sender, a database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

import api.models  # noqa: F401 - registers every api/ table on Base
from api.db import Base, make_engine, session_factory
from api.notify import models as notify_models  # noqa: F401 - the tables under test
from api.notify.sender import RetryPolicy, WebhookSender, make_client

from .recorder import RecordingServer


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with make_client(timeout_s=5.0, connect_timeout_s=2.0) as client:
        yield client


@pytest.fixture
def pauses() -> list[float]:
    """The back-off pauses the sender asked for (recorded instead of slept)."""
    return []


@pytest.fixture
def sender(http_client: httpx.Client, pauses: list[float]) -> WebhookSender:
    return WebhookSender(http_client, RetryPolicy(attempts=3, initial_delay_s=0.5),
                         sleep=pauses.append)


@pytest.fixture
def db_session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'api.sqlite3'}")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()
