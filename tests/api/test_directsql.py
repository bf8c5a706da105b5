"""Statements run straight on the driver's cursor (api/directsql.py) read and write exactly
what SQLAlchemy's own execution reads and writes, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, create_engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.alerts.models import AlertRecord
from api.directsql import DirectStatement
from api.models import Base
from common.alerts import AlertKind, AlertStatus, Severity

ALERTS = cast(Table, AlertRecord.__table__)
BY_KEY = select(ALERTS).where(ALERTS.c.key == bindparam("key"))
UPDATE_BY_ID = update(ALERTS).where(ALERTS.c.id == bindparam("_id"))
CHANGED = ("status", "severity", "updated_at", "evidence", "window", "acknowledged_at")


def _stored_alert(db_session: Session, key: str) -> AlertRecord:
    now = datetime(2026, 7, 14, 2, 30, tzinfo=UTC)
    record = AlertRecord(key=key, kind=AlertKind.NIGHT_FLOW, severity=Severity.MEDIUM,
                         status=AlertStatus.OPEN, title="night flow above baseline",
                         village="v001", dma="dma-v001", started_at=now - timedelta(hours=3),
                         detected_at=now, updated_at=now,
                         evidence={"night_flow_m3h": 1.2, "nights": [1, 2]},
                         window={"start": now.isoformat()}, revision=1, received_at=now)
    db_session.add(record)
    db_session.commit()
    return record


def _changes(record_id: int) -> dict[str, Any]:
    return {"_id": record_id, "status": AlertStatus.RESOLVED, "severity": Severity.HIGH,
            "updated_at": datetime(2026, 7, 15, 9, 0, tzinfo=UTC),
            "evidence": {"night_flow_m3h": 0.7, "note": "back to baseline"},
            "window": None, "acknowledged_at": None}


def _row(db_session: Session, key: str) -> tuple[Any, ...]:
    return tuple(db_session.connection().execute(BY_KEY, {"key": key}).one())


def test_a_direct_select_reads_what_sqlalchemy_reads(db_session: Session) -> None:
    _stored_alert(db_session, "night_flow:dma-v001")
    direct = DirectStatement(BY_KEY).rows(db_session.connection(), {"key": "night_flow:dma-v001"})
    assert direct == [_row(db_session, "night_flow:dma-v001")]
    kind, updated_at, evidence = direct[0][2], direct[0][16], direct[0][18]
    assert kind is AlertKind.NIGHT_FLOW  # the enum, not its string
    assert updated_at == datetime(2026, 7, 14, 2, 30, tzinfo=UTC)  # aware, in UTC
    assert evidence == {"night_flow_m3h": 1.2, "nights": [1, 2]}


def test_a_direct_select_of_nothing_reads_no_rows(db_session: Session) -> None:
    assert DirectStatement(BY_KEY).rows(db_session.connection(), {"key": "nope:x"}) == []


def test_a_direct_executemany_writes_what_sqlalchemy_writes(db_session: Session) -> None:
    """Two alerts get the same changes, one through SQLAlchemy, one straight: the rows read
    back alike, a JSON None included (JSON null, as SQLAlchemy writes it)."""
    by_sqlalchemy = _stored_alert(db_session, "night_flow:dma-a")
    straight = _stored_alert(db_session, "night_flow:dma-b")
    connection = db_session.connection()
    connection.execute(UPDATE_BY_ID, [_changes(by_sqlalchemy.id)])
    DirectStatement(UPDATE_BY_ID, column_keys=CHANGED).execute_many(
        connection, [_changes(straight.id)])
    db_session.commit()
    written = [_row(db_session, key) for key in ("night_flow:dma-a", "night_flow:dma-b")]
    first, second = ({name: value for name, value in zip(ALERTS.c.keys(), row, strict=True)
                      if name not in ("id", "key")} for row in written)
    assert first == second
    assert second["status"] is AlertStatus.RESOLVED
    assert second["evidence"] == {"night_flow_m3h": 0.7, "note": "back to baseline"}
    null_window = select(ALERTS.c.key).where(ALERTS.c.window.is_(None))
    assert db_session.connection().execute(null_window).all() == []  # JSON null both


def test_a_direct_executemany_of_nothing_sends_nothing(db_session: Session) -> None:
    DirectStatement(UPDATE_BY_ID, column_keys=CHANGED).execute_many(db_session.connection(), [])


def test_a_naive_timestamp_is_refused_as_sqlalchemy_refuses_it(db_session: Session) -> None:
    record = _stored_alert(db_session, "night_flow:dma-v001")
    naive = _changes(record.id) | {"updated_at": datetime(2026, 7, 15, 9, 0)}
    with pytest.raises(ValueError, match="naive datetime"):
        DirectStatement(UPDATE_BY_ID, column_keys=CHANGED).execute_many(
            db_session.connection(), [naive])


def test_a_database_error_is_raised_as_sqlalchemy_raises_it(db_session: Session) -> None:
    """A constraint the write breaks: SQLAlchemy's IntegrityError (which intake's replay
    looks for), not the driver's own exception, and the statement named in it."""
    record = _stored_alert(db_session, "night_flow:dma-v001")
    other = _stored_alert(db_session, "night_flow:dma-v002")
    same_key = DirectStatement(UPDATE_BY_ID, column_keys=("key",))
    with pytest.raises(IntegrityError, match=r"\[SQL: UPDATE alerts SET \"?key"):
        same_key.execute_many(db_session.connection(), [{"_id": other.id, "key": record.key}])
    db_session.rollback()


def test_an_expanding_parameter_is_refused_with_a_clear_error(db_session: Session) -> None:
    many_keys = select(ALERTS).where(ALERTS.c.key.in_(bindparam("keys", expanding=True)))
    with pytest.raises(ValueError, match="expanding parameter"):
        DirectStatement(many_keys).rows(db_session.connection(), {"keys": ["a:b"]})


def test_one_statement_runs_on_each_database_it_meets(db_session: Session) -> None:
    """Compiled once per dialect: the same object answers on this database and then on an
    in-memory SQLite (whose placeholders are positional) without mixing their SQL."""
    statement = DirectStatement(BY_KEY)
    _stored_alert(db_session, "night_flow:dma-v001")
    here = statement.rows(db_session.connection(), {"key": "night_flow:dma-v001"})
    engine = create_engine("sqlite://")
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as other:
            _stored_alert(other, "night_flow:dma-v001")
            there = statement.rows(other.connection(), {"key": "night_flow:dma-v001"})
    finally:
        engine.dispose()
    assert [row[1:] for row in here] == [row[1:] for row in there]
