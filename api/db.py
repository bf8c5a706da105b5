"""The database layer every api/ package builds on: ``Base``, engines, sessions.

SQLite (a file under ``var/``) is the embedded default; PostgreSQL (psycopg 3,
``postgresql+psycopg://...``) is production. Tables are declared on :class:`Base`, whose
metadata carries a naming convention so constraints get stable names that Alembic can diff
and drop on both databases. Timestamps use :class:`UtcDateTime`: aware UTC datetimes in, aware
UTC datetimes out, also on SQLite (which stores no zone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import DateTime, Engine, MetaData, Select, SQLColumnExpression, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every api/ table (register new modules in ``api/models.py``)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give timestamps a timezone (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite keeps no zone; we only ever store UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


SelectT = TypeVar("SelectT", bound=Select[Any])


def where_equal(query: SelectT, *filters: tuple[SQLColumnExpression[Any], object]) -> SelectT:
    """``query`` narrowed to ``column == value`` for each ``(column, value)`` whose value is
    given (not None): the optional filters of a list endpoint.

    ``where_equal(select(Ticket), (Ticket.crew_id, crew_id), (Ticket.priority, priority))``
    """
    conditions = [column == value for column, value in filters if value is not None]
    return query.where(*conditions) if conditions else query


#: Connections a server process keeps open to PostgreSQL, and how many more it may open
#: under a burst. FastAPI runs sync routes on a 40-thread pool; a request holds one
#: connection at a time, so 30 covers what the database can usefully run in parallel on a
#: small server without making requests queue for a connection (SQLAlchemy's default is
#: 5 + 10). Two workers stay well inside PostgreSQL's default max_connections (100).
POOL_SIZE = 10
POOL_OVERFLOW = 20
#: A request waits at most this long for a free connection, s.
POOL_TIMEOUT_S = 10.0


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and its parent directory created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=POOL_SIZE,
                         max_overflow=POOL_OVERFLOW, pool_timeout=POOL_TIMEOUT_S)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


class ReadOnlySessionError(RuntimeError):
    """Something tried to write through a read-only session."""


def _refuse_flush(session: Session, _context: object, _instances: object) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError("this session is read-only (api.db.ReadSessionDep); "
                                   "write through SessionDep")


def read_only_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for read-only requests: each statement runs on its own (autocommit).

    A transaction costs two round trips to the database (``BEGIN``, ``ROLLBACK``) that a
    single read does not need; a list page that reads once is nearly twice as fast without
    them. ORM writes are refused (:class:`ReadOnlySessionError`), so nothing can be half
    written outside a transaction.
    """
    factory = sessionmaker(bind=engine.execution_options(isolation_level="AUTOCOMMIT"),
                           expire_on_commit=False)
    event.listen(factory, "before_flush", _refuse_flush)
    return factory


def read_only_factory(app: Any) -> sessionmaker[Session]:
    """The app's factory of read-only sessions (made on first use)."""
    state = app.state
    factory: sessionmaker[Session] | None = getattr(state, "read_session_factory", None)
    if factory is None:
        factory = read_only_session_factory(state.engine)
        state.read_session_factory = factory
    return factory


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """FastAPI dependency: a read-only session (see :func:`read_only_session_factory`).

    Closing it only hands the connection back to the pool (there is no transaction to roll
    back), so it stays on the event loop.
    """
    session = read_only_factory(request.app)()
    try:
        yield session
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request from the app's factory.

    Service functions commit their own unit of work; anything left uncommitted (a request
    that failed half-way) is rolled back when the session closes. Opening a session does no
    I/O (it connects on first use), so this runs on the event loop; only closing one that
    still holds a transaction (a rollback on the wire) goes to a worker thread.
    """
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()
