"""Core statements run straight on the DBAPI cursor, for the few statements that run by the
thousand (alert intake: api/alerts/writer.py).

``connection.execute(statement, ...)`` costs ~0.15-0.25 ms of Python per call before and
after the database's own work: the compiled-cache lookup, an execution context, parameter
processing through the context, a result object and its row wrappers (a read of four
alerts: 0.43 ms that way, 0.23 ms straight). A batch of alert intake runs three such
statements; straight, its writer spends ~15 % less CPU per alert (benchmarks/README.md,
"Intake, round 6").

:class:`DirectStatement` compiles its statement once per dialect and then runs it as
SQLAlchemy would, with SQLAlchemy's own SQL text and the column types' own bind and result
processors (enums, UTC timestamps, JSON), minus that per-call work; the driver's errors are
raised as SQLAlchemy's (:func:`driver_errors`). It is for plain statements only: no
expanding parameters, no defaults to compute, no ORM, and no engine events (none of its
callers' statements needs them).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as one dialect runs it."""

    sql: str
    #: Parameter names in the order of a positional paramstyle's placeholders; None for a
    #: named paramstyle (psycopg's ``%(name)s``).
    positions: tuple[str, ...] | None
    binds: dict[str, Processor]
    #: One per result column (None: the driver's value as it is); empty for no result.
    results: tuple[Processor | None, ...]


class DirectStatement:
    """``statement`` (a Core SELECT, INSERT or UPDATE with named bind parameters), compiled
    for each dialect it meets. ``column_keys`` names the columns an INSERT or UPDATE
    without explicit values sets (as ``Compiled.compile(column_keys=...)``)."""

    def __init__(self, statement: ClauseElement, *, column_keys: Iterable[str] = ()) -> None:
        self._statement = statement
        self._column_keys = list(column_keys)
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, _Compiled] = \
            weakref.WeakKeyDictionary()

    def rows(self, connection: Connection, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's result rows for ``parameters``, each value processed by its
        column's type as SQLAlchemy's result would."""
        compiled = self._for(connection.dialect)
        bound = _bound(compiled, parameters)
        with _cursor(connection, compiled.sql) as cursor:
            cursor.execute(compiled.sql, bound)
            fetched = cursor.fetchall()
        processors = compiled.results
        if not any(processors):
            return [tuple(row) for row in fetched]
        return [tuple(value if process is None else process(value)
                      for process, value in zip(processors, row, strict=True))
                for row in fetched]

    def execute_many(self, connection: Connection,
                     parameters: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per parameter set (the driver's executemany)."""
        if not parameters:
            return
        compiled = self._for(connection.dialect)
        bound = [_bound(compiled, one) for one in parameters]
        with _cursor(connection, compiled.sql) as cursor:
            cursor.executemany(compiled.sql, bound)

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect)
        if compiled is None:
            compiled = self._by_dialect[dialect] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect, column_keys=self._column_keys)
        assert isinstance(compiled, SQLCompiler)
        binds: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            if bind.expanding:
                raise ValueError(f"{name!r} is an expanding parameter: not supported here")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds[name] = process
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(self._statement, "selected_columns", ()))
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        return _Compiled(sql=compiled.string, positions=positions, binds=binds,
                         results=results)


def _bound(compiled: _Compiled, parameters: Mapping[str, Any]) -> Any:
    """``parameters`` as the driver takes them: each through its type's bind processor (as
    SQLAlchemy does, None included: a JSON column writes it as JSON null), by name or in
    placeholder order."""
    binds = compiled.binds
    named = {name: binds[name](value) if name in binds else value
             for name, value in parameters.items()}
    if compiled.positions is None:
        return named
    return tuple(named[name] for name in compiled.positions)


@contextmanager
def _cursor(connection: Connection, statement: str) -> Iterator[Any]:
    """A DBAPI cursor of ``connection``, closed after use, the driver's errors raised as
    SQLAlchemy's."""
    with driver_errors(connection, statement), closing(connection.connection.cursor()) as cursor:
        yield cursor


@contextmanager
def driver_errors(connection: Connection, statement: str | None = None) -> Iterator[None]:
    """The driver's errors inside, raised as SQLAlchemy raises them from its own execution:
    as its ``DBAPIError`` subclass (``IntegrityError``, ``OperationalError``...), with the
    connection invalidated when the error broke it (so a pool or a connection holder
    replaces it, and callers that replay on such errors see the same errors either way)."""
    dialect = connection.dialect
    driver_error = dialect.loaded_dbapi.Error
    try:
        yield
    except driver_error as exc:
        broken = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if broken:
            connection.invalidate(exc)
        raise DBAPIError.instance(statement, None, exc, driver_error,
                                  connection_invalidated=broken, dialect=dialect) from exc
