"""The fast paths behave like the slow ones: bulk ticket pages, cached pages (renewed by the
ticket table's stamp, per crew scope), cached callers, read-only sessions, repeated alerts,
and the server's TCP_NODELAY (the figures are in benchmarks/)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from api.auth.cache import PrincipalCache, invalidate_all
from api.auth.models import Role, User
from api.auth.security import Principal, issue_access_token
from api.cli import HTTP_PROTOCOL
from api.crews.models import Crew
from api.db import ReadOnlySessionError, read_only_session_factory
from api.tickets import changes
from api.tickets.models import Ticket
from api.tickets.views import listing_cache_of
from common.alerts import Place
from common.localservices import free_port
from tests.api.conftest import JWT_SECRET, UserFactory
from tests.api.helpers import alert, import_county, move, put_alert


@pytest.fixture
def long_lived_cache(app: FastAPI) -> Iterator[PrincipalCache]:
    """A cache that keeps entries for an hour, so nothing here depends on the clock."""
    previous = getattr(app.state, "principal_cache", None)
    cache = PrincipalCache(ttl_s=3600)
    app.state.principal_cache = cache
    yield cache
    app.state.principal_cache = previous if previous is not None else PrincipalCache()


def test_a_ticket_page_reads_like_each_ticket_alone(client: TestClient,
                                                    admin: dict[str, str]) -> None:
    import_county(client, admin)
    for n in range(5):  # five DMAs: five problems
        put_alert(client, admin, alert(subject=f"dma-v001-{n}",
                                       place=Place(village="v001", dma=f"dma-v001-{n}")))
    page = client.get("/api/v1/tickets", headers=admin, params={"status": "open"})
    assert page.status_code == 200
    listed = page.json()
    assert len(listed) == 5
    assert [t["due_at"] for t in listed] == sorted(t["due_at"] for t in listed)
    for ticket in listed:
        alone = client.get(f"/api/v1/tickets/{ticket['id']}", headers=admin).json()
        assert ticket == alone
        assert ticket["allowed_next"] == ["scheduled", "cancelled"]


def test_a_cached_caller_skips_the_database_until_a_change_here_clears_it(
        app: FastAPI, client: TestClient, admin: dict[str, str], viewer: dict[str, str],
        db_session: Session, long_lived_cache: PrincipalCache) -> None:
    assert client.get("/api/v1/auth/me", headers=viewer).status_code == 200
    assert len(long_lived_cache) == 1
    # disabled behind the service's back (as another process would): the cache still holds
    db_session.execute(update(User).where(User.username == "vic").values(active=False))
    db_session.commit()
    assert client.get("/api/v1/auth/me", headers=viewer).status_code == 200
    # a user change made through this process clears every cached caller at once
    invalidate_all()
    assert client.get("/api/v1/auth/me", headers=viewer).status_code == 401


def test_a_user_disabled_through_the_api_is_refused_at_once(
        client: TestClient, admin: dict[str, str], viewer: dict[str, str],
        db_session: Session, long_lived_cache: PrincipalCache) -> None:
    assert client.get("/api/v1/auth/me", headers=viewer).status_code == 200
    user_id = db_session.query(User.id).filter(User.username == "vic").scalar()
    assert client.patch(f"/api/v1/users/{user_id}", headers=admin,
                        json={"active": False}).status_code == 200
    assert client.get("/api/v1/auth/me", headers=viewer).status_code == 401


def test_sign_ins_get_distinct_tokens_and_expired_ones_are_not_cached() -> None:
    first = issue_access_token(username="dora", secret=JWT_SECRET, minutes=5)
    second = issue_access_token(username="dora", secret=JWT_SECRET, minutes=5)
    assert first != second  # same user, same second: still two cache keys
    cache = PrincipalCache(ttl_s=3600)
    dora = Principal(name="dora")
    cache.put(first, dora, expires_in_s=0.0)
    assert cache.get(first) is None
    cache.put(second, dora, expires_in_s=60.0)
    assert cache.get(second) == dora


def test_a_read_only_session_refuses_writes(app: FastAPI, db_session: Session) -> None:
    factory = read_only_session_factory(app.state.engine)
    with factory() as read_session:
        assert read_session.query(Ticket).count() == 0
        read_session.add(User(username="sneaky", role="viewer", password_hash="x"))
        with pytest.raises(ReadOnlySessionError):
            read_session.flush()


def test_a_repeated_alert_answers_with_its_ticket_and_changes_nothing(
        client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    first = put_alert(client, admin, alert())
    assert first.status_code == 201
    repeat = put_alert(client, admin, alert())
    assert repeat.status_code == 200
    assert repeat.json()["ticket_id"] == first.json()["ticket_id"]
    assert repeat.json()["revision"] == first.json()["revision"]


async def _hello(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


def test_the_server_turns_nagle_off_on_its_connections() -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_hello, host="127.0.0.1", port=port,
                                           http=HTTP_PROTOCOL, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"ok"
        sockets = [p.transport.get_extra_info("socket")  # type: ignore[attr-defined]
                   for p in server.server_state.connections]
        assert sockets
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
        connection.close()
    finally:
        server.should_exit = True
        thread.join(10)


def _stamp(db_session: Session) -> int | None:
    db_session.expire_all()
    return changes.current_version(db_session)


def test_every_ticket_write_renews_the_table_stamp_and_alert_only_news_does_not(
        client: TestClient, admin: dict[str, str], db_session: Session) -> None:
    import_county(client, admin)
    assert _stamp(db_session) is None  # nothing written yet: nothing may be cached
    ticket_id = put_alert(client, admin, alert()).json()["ticket_id"]
    opened = _stamp(db_session)
    assert opened is not None
    put_alert(client, admin, alert(evidence={"night_flow_m3h": 2.6, "night_baseline_m3h": 1.0}))
    assert _stamp(db_session) == opened  # the alert changed, its ticket did not
    client.patch(f"/api/v1/tickets/{ticket_id}", headers=admin, json={"title": "main leak"})
    patched = _stamp(db_session)
    assert patched != opened
    # a bulk statement through a session (as a script or another worker might) counts too
    db_session.execute(update(Ticket).where(Ticket.id == ticket_id).values(description="x"))
    db_session.commit()
    assert _stamp(db_session) not in (None, opened, patched)


def test_cached_pages_follow_every_change_and_each_crews_scope(
        app: FastAPI, client: TestClient, admin: dict[str, str], db_session: Session,
        make_user: UserFactory, make_crew: Callable[..., Crew]) -> None:
    import_county(client, admin)
    north, south = make_crew("north"), make_crew("south")
    fitters = {crew.id: make_user(f"fitter-{crew.name}", Role.CREW_MEMBER, crew_id=crew.id)
               for crew in (north, south)}
    for n, crew in enumerate((north, south)):
        ticket_id = put_alert(client, admin, alert(subject=f"dma-x{n}", place=Place(
            village="v001", dma=f"dma-x{n}"))).json()["ticket_id"]
        move(client, admin, ticket_id, "scheduled", crew_id=crew.id)
    cache = listing_cache_of(app)
    params = {"status": "scheduled"}
    for _ in range(2):  # the second round is answered from the cache
        for crew_id, headers in fitters.items():
            page = client.get("/api/v1/tickets", headers=headers, params=params).json()
            assert [t["crew_id"] for t in page] == [crew_id]
    assert cache.hits >= 2
    everyone = client.get("/api/v1/tickets", headers=admin, params=params).json()
    assert len(everyone) == 2
    # a change behind this process's back (another worker) is seen at once
    db_session.execute(update(Ticket).where(Ticket.id == everyone[0]["id"])
                       .values(title="changed elsewhere"))
    db_session.commit()
    again = client.get("/api/v1/tickets", headers=admin, params=params).json()
    assert again[0]["title"] == "changed elsewhere"
    north_ticket = next(t["id"] for t in everyone if t["crew_id"] == north.id)
    assert move(client, fitters[north.id], north_ticket, "en_route").status_code == 200
    north_page = client.get("/api/v1/tickets", headers=fitters[north.id], params=params).json()
    assert north_page == []
