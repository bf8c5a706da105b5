"""Alert intake in batches (api/alerts/writer.py, flows.receive_batch): every alert lands,
in order, each answer is what the alert alone would have got, a failing alert fails alone,
a repeat is a no-op, racing writers end with one ticket per problem. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.alerts import flows, service
from api.alerts.flows import Received, Submission
from api.alerts.models import AlertRecord
from api.alerts.schemas import AlertRead
from api.alerts.writer import IntakeWriter
from api.audit.models import AuditEntry
from api.auth.models import ServiceKind
from api.auth.security import SYSTEM, Principal
from api.db import utcnow
from api.emergency.models import EmergencyActivation
from api.emergency.plans import default_plan
from api.errors import Invalid
from api.tickets.models import Ticket
from api.tickets.rules import DEFAULT_RULES, TicketRule
from common.alerts import Alert, AlertKind, AlertStatus, Place, Severity
from tests.api.emergency.alerts import shortage
from tests.api.helpers import T0, alert, import_county, put_alert


def _leak(n: int, revision: int = 0, kind: AlertKind = AlertKind.NIGHT_FLOW) -> Alert:
    """An open leak alert on its own DMA (its own problem) with ``revision`` as evidence."""
    dma = f"dma-v001-{n}"
    return alert(kind, dma, place=Place(village="v001", dma=dma),
                 evidence={"night_flow_m3h": 2.5, "revision": float(revision)})


def _batch(app: FastAPI, alerts: list[Alert],
           rules: Mapping[AlertKind, TicketRule] = DEFAULT_RULES) -> list[flows.Outcome]:
    return flows.receive_batch(session_factory=app.state.session_factory,
                               batch=[Submission(a, SYSTEM) for a in alerts], rules=rules,
                               plans=[default_plan()], settings=app.state.api_settings)


def _body(outcome: flows.Outcome) -> dict[str, Any]:
    assert isinstance(outcome, Received), outcome
    body: dict[str, Any] = json.loads(outcome.body)
    return body


def _audit_actions(db_session: Session, key: str) -> list[str]:
    return list(db_session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_type == "alert", AuditEntry.entity_id == key).order_by(AuditEntry.id)))


@pytest.fixture
def county(client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)


@pytest.fixture
def writer(app: FastAPI) -> Iterator[IntakeWriter]:
    made = IntakeWriter(app.state.session_factory, rules=DEFAULT_RULES, plans=[default_plan()],
                        settings=app.state.api_settings)
    yield made
    made.close()


def test_a_batch_answers_each_alert_as_if_it_came_alone(
        app: FastAPI, county: None, db_session: Session) -> None:
    first, repeat, newer = _leak(1), _leak(1), _leak(1, revision=1)
    other = _leak(2)
    outcomes = _batch(app, [first, other, repeat, newer])
    bodies = [_body(o) for o in outcomes]
    assert [o.created for o in outcomes if isinstance(o, Received)] == [True, True, False, False]
    # each answer is the alert as it stood after that request, not after the batch
    assert [b["revision"] for b in bodies] == [1, 1, 1, 2]
    assert bodies[3]["evidence"]["revision"] == 1.0
    assert bodies[0]["ticket_id"] == bodies[2]["ticket_id"] == bodies[3]["ticket_id"]
    assert bodies[1]["ticket_id"] not in (None, bodies[0]["ticket_id"])
    # a new alert's answer is what the alert endpoints answer for it once stored
    stored_other = db_session.scalar(select(AlertRecord).where(AlertRecord.key == other.key))
    assert bodies[1] == json.loads(AlertRead.model_validate(stored_other).model_dump_json())
    # the repeat wrote nothing: one create, one update
    assert _audit_actions(db_session, first.key) == ["alert.create", "alert.update"]
    assert db_session.scalar(select(func.count()).select_from(Ticket)) == 2
    # sent again as a batch of repeats: nothing changes at all
    again = _batch(app, [newer, other])
    assert [_body(o)["revision"] for o in again] == [2, 1]
    assert _audit_actions(db_session, first.key) == ["alert.create", "alert.update"]


def test_a_failing_alert_fails_alone_and_the_rest_of_its_batch_commits(
        app: FastAPI, county: None, db_session: Session) -> None:
    class Refusing(dict[AlertKind, TicketRule]):
        """The built-in rules, but burst alerts cannot be turned into tickets."""

        def get(self, kind: AlertKind, default: Any = None) -> Any:  # type: ignore[override]
            if kind is AlertKind.BURST:
                raise Invalid("no rule may handle burst alerts here")
            return super().get(kind, default)

    alerts = [_leak(1), _leak(2, kind=AlertKind.BURST), _leak(3)]
    outcomes = _batch(app, alerts, rules=Refusing(DEFAULT_RULES))
    assert isinstance(outcomes[1], Invalid)
    assert "burst" in str(outcomes[1])
    assert [_body(outcomes[n])["revision"] for n in (0, 2)] == [1, 1]
    stored = set(db_session.scalars(select(AlertRecord.key)))
    assert stored == {alerts[0].key, alerts[2].key}
    assert _audit_actions(db_session, alerts[1].key) == []
    assert db_session.scalar(select(func.count()).select_from(Ticket)) == 2


def test_an_alert_the_database_refuses_fails_alone_with_a_422(
        app: FastAPI, client: TestClient, admin: dict[str, str], county: None,
        database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite stores a NUL character")
    good, bad = _leak(1), _leak(2).model_copy(update={"title": "night flow \x00 here"})
    outcomes = _batch(app, [good, bad, _leak(3)])
    assert [type(o).__name__ for o in outcomes] == ["Received", "DataError", "Received"]
    answer = put_alert(client, admin, bad)
    assert answer.status_code == 422 and answer.json()["code"] == "invalid"


def test_an_update_the_database_refuses_in_the_batch_pipeline_fails_alone(
        app: FastAPI, county: None, database_url: str) -> None:
    """PostgreSQL writes a batch's alert updates in a psycopg pipeline, whose errors come
    at its sync from the driver: they must reach the replay as SQLAlchemy's errors."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite does not enforce a column's length")
    _batch(app, [_leak(1), _leak(2)])
    too_long = Place(village="v001", dma="dma-v001-2", device="d" * 100)  # the column: 64
    bad = _leak(2, 1).model_copy(update={"place": too_long})
    outcomes = _batch(app, [_leak(1, 1), bad, _leak(3)])
    assert isinstance(outcomes[1], sqlalchemy.exc.DataError), outcomes[1]
    assert [_body(outcomes[n])["revision"] for n in (0, 2)] == [2, 1]


def test_shortage_alerts_in_a_batch_drive_their_plan_in_the_same_transaction(
        app: FastAPI, county: None, db_session: Session) -> None:
    activating = shortage("IV", evidence={"days_to_shortfall": 5.0})
    escalating = shortage("III", evidence={"days_to_shortfall": 2.0})
    outcomes = _batch(app, [activating, _leak(1), escalating])
    assert [_body(o)["revision"] for o in outcomes] == [1, 1, 2]
    activation = db_session.scalars(select(EmergencyActivation)).one()
    assert (activation.alert_key, activation.level, activation.peak_level) == (
        activating.key, "III", "III")


def test_concurrent_intakes_from_threads_all_land_in_order(
        app: FastAPI, county: None, writer: IntakeWriter, db_session: Session) -> None:
    keys, versions = 12, 5

    def send(n: int) -> list[Received]:  # one key's versions in order, as the analysis does
        return [writer.submit(_leak(n, revision), SYSTEM).result(timeout=60)
                for revision in range(versions)]

    with ThreadPoolExecutor(max_workers=keys) as pool:
        answers = list(pool.map(send, range(keys)))
    for per_key in answers:
        assert [a.created for a in per_key] == [True] + [False] * (versions - 1)
        assert [json.loads(a.body)["revision"] for a in per_key] == list(range(1, versions + 1))
    records = db_session.scalars(select(AlertRecord)).all()
    assert len(records) == keys
    assert {r.revision for r in records} == {versions}
    assert {r.evidence["revision"] for r in records} == {versions - 1}
    assert db_session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.entity_type == "alert")) == keys * versions
    assert db_session.scalar(select(func.count()).select_from(Ticket)) == keys


class _CountedSessions(sessionmaker[Session]):
    """The app's sessions, counted; the first waits for ``release`` once ``entered`` is set
    (so that alerts can queue behind it)."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(bind=app.state.engine, expire_on_commit=False)
        self.opened = 0
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, **local_kw: Any) -> Session:
        self.opened += 1
        if self.opened == 1:
            self.entered.set()
            assert self.release.wait(60)
        return super().__call__(**local_kw)


def test_alerts_waiting_while_the_writer_commits_go_in_one_transaction(
        app: FastAPI, county: None, db_session: Session) -> None:
    sessions = _CountedSessions(app)
    writer = IntakeWriter(sessions, rules=DEFAULT_RULES, plans=[default_plan()],
                          settings=app.state.api_settings)
    try:
        first = writer.submit(_leak(0), SYSTEM)
        assert sessions.entered.wait(60)
        rest = [writer.submit(_leak(n), SYSTEM) for n in range(1, 9)]
        sessions.release.set()
        assert first.result(timeout=60).created
        assert all(f.result(timeout=60).created for f in rest)
    finally:
        writer.close()
    assert sessions.opened == 2  # the eight that waited: one session, one commit
    assert db_session.scalar(select(func.count()).select_from(AlertRecord)) == 9


def test_alerts_handed_in_during_one_loop_turn_go_in_one_transaction(
        app: FastAPI, county: None, db_session: Session) -> None:
    sessions = _CountedSessions(app)
    sessions.release.set()
    writer = IntakeWriter(sessions, rules=DEFAULT_RULES, plans=[default_plan()],
                          settings=app.state.api_settings)

    async def request(n: int) -> Received:
        # the loop is busy between hand-ins (as when parsing other requests): a writer
        # woken by the first alert would commit it alone meanwhile
        time.sleep(0.01)
        return await writer.receive(_leak(n), SYSTEM)

    async def requests_of_one_turn() -> list[Received]:
        return await asyncio.gather(*(request(n) for n in range(8)))

    try:
        answers = asyncio.run(requests_of_one_turn())
    finally:
        writer.close()
    assert all(answer.created for answer in answers)
    assert sessions.opened == 1
    assert db_session.scalar(select(func.count()).select_from(AlertRecord)) == 8


def _connection_of(session: Session) -> Any:
    return session.connection().connection.dbapi_connection


def test_the_writer_keeps_its_connection_and_replaces_a_broken_one(
        app: FastAPI, county: None, writer: IntakeWriter, db_session: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[Any] = []
    commit = flows._commit

    def noting_the_connection(session: Session, *args: Any) -> list[Received]:
        used.append(_connection_of(session))
        return commit(session, *args)

    monkeypatch.setattr(flows, "_commit", noting_the_connection)
    assert writer.submit(_leak(1), SYSTEM).result(timeout=60).created
    assert writer.submit(_leak(1, revision=1), SYSTEM).result(timeout=60).created is False
    assert used[0] is used[1]  # the same connection for both batches
    used[1].close()  # as when the database restarts: the next batch finds it broken
    answer = writer.submit(_leak(1, revision=2), SYSTEM).result(timeout=60)
    assert json.loads(answer.body)["revision"] == 3  # replayed on a pooled connection
    assert writer.submit(_leak(1, revision=3), SYSTEM).result(timeout=60).created is False
    assert used[-1] is not used[1]  # and the writer holds a new one
    assert _audit_actions(db_session, _leak(1).key) == ["alert.create"] + ["alert.update"] * 3


def _niceness(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux threads' own priority")
@pytest.mark.parametrize("nice", [10, 0])
def test_the_writer_thread_runs_nicer_than_the_requests_by_the_setting(
        app: FastAPI, county: None, nice: int) -> None:
    """The writer yields the cores to request handling (bigger batches under load); with
    the setting at 0 it keeps the priority of the thread that started it."""
    settings = app.state.api_settings.model_copy(update={"intake_writer_nice": nice})
    writer = IntakeWriter(app.state.session_factory, rules=DEFAULT_RULES,
                          plans=[default_plan()], settings=settings)
    before = set(threading.enumerate())
    try:
        assert writer.submit(_leak(1), SYSTEM).result(timeout=60).created
        [started] = [thread for thread in set(threading.enumerate()) - before
                     if thread.name == "alert-intake-writer"]
        assert _niceness(started) == min(19, _niceness(threading.current_thread()) + nice)
    finally:
        writer.close()


def test_a_batch_writes_every_kind_of_alert_change(
        app: FastAPI, client: TestClient, admin: dict[str, str], county: None,
        db_session: Session) -> None:
    key = _leak(1).key
    _batch(app, [_leak(n) for n in range(4)])
    acked = client.post(f"/api/v1/alerts/{_leak(3).key}/acknowledge", headers=admin, json={})
    assert acked.status_code == 200
    resolved = _leak(3).model_copy(update={"status": AlertStatus.RESOLVED,
                                           "resolved_at": T0 + timedelta(hours=2)})
    _batch(app, [resolved])
    # new evidence, a severity change, a resolution, a repeat and a re-raise, in one batch
    outcomes = _batch(app, [
        _leak(1, revision=1),
        _leak(2).model_copy(update={"severity": Severity.CRITICAL}),
        _leak(0).model_copy(update={"status": AlertStatus.RESOLVED,
                                    "resolved_at": T0 + timedelta(hours=2)}),
        _leak(1, revision=1),
        _leak(3, revision=1),
        _leak(1, revision=2)])
    assert [_body(o)["revision"] for o in outcomes] == [2, 2, 2, 2, 3, 3]
    db_session.expire_all()
    stored = {r.key: r for r in db_session.scalars(select(AlertRecord))}
    assert stored[key].revision == 3 and stored[key].evidence["revision"] == 2.0
    assert stored[_leak(2).key].severity is Severity.CRITICAL
    assert stored[_leak(0).key].status is AlertStatus.RESOLVED
    reraised = stored[_leak(3).key]
    assert (reraised.status, reraised.acknowledged_at, reraised.revision) == (
        AlertStatus.OPEN, None, 3)
    assert {r.key: json.loads(client.get(f"/api/v1/alerts/{r.key}", headers=admin).text)
            for r in stored.values()} == {k: _body(o) for k, o in (
                (_leak(1).key, outcomes[5]), (_leak(2).key, outcomes[1]),
                (_leak(0).key, outcomes[2]), (_leak(3).key, outcomes[4]))}
    ticket = db_session.get(Ticket, stored[_leak(2).key].ticket_id)
    assert ticket is not None and ticket.priority.value == "urgent"


def _alert_audit_trail(db_session: Session, keys: list[str], since: datetime,
                       ) -> list[tuple[Any, ...]]:
    """The audit entries of alerts ``keys`` (entity named by its index in ``keys``), in the
    order written; each made at or after ``since``."""
    db_session.expire_all()
    entries = db_session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "alert", AuditEntry.entity_id.in_(keys))
        .order_by(AuditEntry.id)).all()
    assert all(entry.at >= since for entry in entries)
    return [(entry.actor, entry.actor_role, entry.action, entry.entity_type,
             keys.index(entry.entity_id), entry.reason, entry.changes) for entry in entries]


def test_a_batch_audits_each_alert_as_the_one_alert_intake_does(
        app: FastAPI, county: None, db_session: Session) -> None:
    """The batch inserts its alerts' audit entries in one statement; the one-alert intake
    (service.intake) adds each as an ORM object: the same rows either way."""
    analysis = Principal(name="analysis-1", service=ServiceKind.ANALYSIS)

    def versions(first: int) -> list[Alert]:
        one, two = _leak(first), _leak(first + 1)
        return [one, two, _leak(first, revision=1),
                two.model_copy(update={"severity": Severity.CRITICAL}),
                _leak(first, revision=1).model_copy(update={
                    "status": AlertStatus.RESOLVED, "resolved_at": T0 + timedelta(hours=2)}),
                _leak(first, revision=2)]

    since = utcnow()
    batched = versions(1)
    outcomes = flows.receive_batch(
        session_factory=app.state.session_factory,
        batch=[Submission(a, analysis) for a in batched], rules=DEFAULT_RULES,
        plans=[default_plan()], settings=app.state.api_settings)
    assert all(isinstance(outcome, Received) for outcome in outcomes)
    alone = versions(11)
    for version in alone:
        service.intake(db_session=db_session, alert=version, actor=analysis,
                       rules=DEFAULT_RULES, settings=app.state.api_settings)
    trail = _alert_audit_trail(db_session, [batched[0].key, batched[1].key], since)
    assert [entry[2] for entry in trail] == [
        "alert.create", "alert.create", "alert.update", "alert.update", "alert.resolve",
        "alert.update"]
    assert trail[0][:2] == ("token:analysis-1", "service:analysis")
    assert trail == _alert_audit_trail(db_session, [alone[0].key, alone[1].key], since)


def test_two_writers_racing_for_one_problem_end_with_one_ticket(
        app: FastAPI, county: None, writer: IntakeWriter, db_session: Session) -> None:
    other = IntakeWriter(app.state.session_factory, rules=DEFAULT_RULES,
                         plans=[default_plan()], settings=app.state.api_settings)
    try:
        for n in range(4):  # night flow and a burst of one DMA: one leak problem
            night = writer.submit(_leak(n), SYSTEM)
            burst = other.submit(_leak(n, kind=AlertKind.BURST), SYSTEM)
            assert night.result(timeout=60).created and burst.result(timeout=60).created
    finally:
        other.close()
    tickets = db_session.scalars(select(Ticket).order_by(Ticket.problem_key)).all()
    assert [t.problem_key for t in tickets] == [f"leak:dma-v001-{n}" for n in range(4)]
    assert all(sorted(t.alert_keys) == [f"burst:dma-v001-{n}", f"night_flow:dma-v001-{n}"]
               for n, t in enumerate(tickets))


def test_the_api_answers_concurrent_puts_after_committing_them(
        client: TestClient, admin: dict[str, str], county: None) -> None:
    def send(n: int) -> tuple[int, int]:
        answer = put_alert(client, admin, _leak(n % 6, revision=n // 6))
        return answer.status_code, answer.json()["revision"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(6)))  # six new alerts at once
    assert answers == [(201, 1)] * 6
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(6, 12)))  # new evidence for each
    assert answers == [(200, 2)] * 6
    listed = client.get("/api/v1/alerts", headers=admin).json()
    assert sorted(a["revision"] for a in listed) == [2] * 6
    mismatch = client.put("/api/v1/alerts/night_flow:dma-v001-0", headers=admin,
                          json=_leak(1).model_dump(mode="json"))
    assert mismatch.status_code == 422
    later = alert(updated_at=T0 + timedelta(hours=1))
    assert put_alert(client, admin, later).status_code == 201


def test_a_closed_writer_finishes_its_queue_and_starts_again_when_given_more(
        app: FastAPI, county: None, writer: IntakeWriter, db_session: Session) -> None:
    queued = [writer.submit(_leak(n), SYSTEM) for n in range(3)]
    writer.close()
    assert all(f.done() and f.result().created for f in queued)
    assert writer.submit(_leak(0, revision=1), SYSTEM).result(timeout=60).created is False
    assert db_session.scalar(select(func.count()).select_from(AlertRecord)) == 3


def _ticket_story(db_session: Session, key: str) -> tuple[Any, ...]:
    """What the ticket of alert ``key`` became and its audit trail (ids left out)."""
    db_session.expire_all()
    record = db_session.scalar(select(AlertRecord).where(AlertRecord.key == key))
    assert record is not None and record.ticket_id is not None
    ticket = db_session.get(Ticket, record.ticket_id)
    assert ticket is not None
    trail = db_session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "ticket", AuditEntry.entity_id == str(ticket.id))
        .order_by(AuditEntry.id)).all()
    dma = key.split(":", 1)[1]
    return (ticket.type, ticket.priority, ticket.required_skill, ticket.title.replace(dma, "*"),
            [k.replace(dma, "*") for k in ticket.alert_keys],
            ticket.alert_key.replace(dma, "*") if ticket.alert_key else None,
            [(e.action, e.reason.replace(dma, "*"),
              {k: v.replace(dma, "*") if isinstance(v, str) else v
               for k, v in (e.changes or {}).items() if k not in ("due_at", "alert_keys")})
             for e in trail])


def test_alerts_sharing_a_ticket_change_it_in_a_batch_as_they_would_one_by_one(
        app: FastAPI, county: None, db_session: Session,
        caplog: pytest.LogCaptureFixture) -> None:
    """The batch reads its alerts' tickets without loading them into its session and adds
    one only when an alert changes it. A leak survey ticket, then in one batch: new
    evidence that changes nothing, a new leak alert that turns the survey into a repair,
    more evidence, a burst that joins, and the survey alert at a severity above the
    priority the batch first read (it must see that the others raised it already): the
    ticket and its audit trail end as the same alerts taken in one by one leave them, in
    one transaction."""
    def story(n: int) -> tuple[list[Alert], list[Alert]]:
        balance = _leak(n, kind=AlertKind.WATER_BALANCE)
        night = _leak(n, kind=AlertKind.NIGHT_FLOW)
        first = [balance.model_copy(update={"severity": Severity.LOW})]
        then = [first[0].model_copy(update={"evidence": {"revision": 1.0}}),
                night,  # new: its problem's ticket is loaded into the batch's session
                first[0].model_copy(update={"evidence": {"revision": 2.0}}),
                _leak(n, kind=AlertKind.BURST),
                first[0].model_copy(update={"severity": Severity.CRITICAL}),
                night.model_copy(update={"evidence": {"revision": 3.0}})]
        return first, then

    first, then = story(7)
    _batch(app, first)
    with caplog.at_level("INFO", logger=flows.log.name):
        outcomes = _batch(app, then)
    assert all(isinstance(outcome, Received) for outcome in outcomes)
    assert "one by one" not in caplog.text  # one transaction, not replayed alert by alert
    tickets = {_body(outcome)["ticket_id"] for outcome in outcomes}
    assert len(tickets) == 1

    first_alone, then_alone = story(8)
    for version in [*first_alone, *then_alone]:
        service.intake(db_session=db_session, alert=version, actor=SYSTEM,
                       rules=DEFAULT_RULES, settings=app.state.api_settings)
    batched = _ticket_story(db_session, first[0].key)
    assert batched == _ticket_story(db_session, first_alone[0].key)
    kind, priority, *_ = batched
    assert (kind.value, priority.value) == ("leak", "urgent")
    assert [action for action, *_ in batched[-1]] == [
        "ticket.create", "ticket.update", "ticket.update"]


def test_a_batch_on_postgresql_takes_two_round_trips_and_leaves_its_connection_as_it_was(
        app: FastAPI, county: None, database_url: str, tmp_path: Path) -> None:
    """The read, then BEGIN, the writes and COMMIT in one pipeline: two answers from the
    server (ReadyForQuery, in libpq's protocol trace) for a batch of new evidence. The
    connection is back in the driver's own transactions afterwards, also when a write in
    the pipeline failed, so its next batch is one transaction again."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's protocol")
    _batch(app, [_leak(n) for n in range(3)])
    engine = app.state.session_factory.kw["bind"]
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        held = sessionmaker(bind=connection, expire_on_commit=False)

        def batch(alerts: list[Alert]) -> list[flows.Outcome]:
            return flows.receive_batch(
                session_factory=app.state.session_factory, batch_session=held,
                batch=[Submission(a, SYSTEM) for a in alerts], rules=DEFAULT_RULES,
                plans=[default_plan()], settings=app.state.api_settings)

        trace = tmp_path / "libpq.trace"
        with trace.open("w") as sink:
            driver.pgconn.trace(sink.fileno())
            driver.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            outcomes = batch([_leak(n, revision=1) for n in range(3)])
            driver.pgconn.untrace()
        assert all(isinstance(outcome, Received) for outcome in outcomes)
        assert trace.read_text().count("ReadyForQuery") == 2
        assert (driver.autocommit, driver.info.transaction_status) == (
            False, pq.TransactionStatus.IDLE)

        too_long = Place(village="v001", dma="dma-v001-1", device="d" * 100)
        failed = batch([_leak(0, revision=2), _leak(1, 2).model_copy(update={"place": too_long})])
        assert isinstance(failed[1], sqlalchemy.exc.DataError)
        assert (driver.autocommit, driver.info.transaction_status) == (
            False, pq.TransactionStatus.IDLE)
        again = batch([_leak(2, revision=2), _leak(0, revision=3)])
        assert [_body(outcome)["revision"] for outcome in again] == [3, 4]
