"""The admin CLI: migrate, the first admin, service tokens (created, or provisioned from a
secret), the register import, and the periodic jobs (verification, notifications, and all
of them with re-planning in ``background``)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import migrate
from api.assets import service as assets
from api.audit.models import AuditEntry
from api.auth.security import SYSTEM, api_key_parts, new_api_key
from api.background import run_background
from api.cli import main
from api.crews.models import Crew
from api.main import create_app
from api.notify import service as notify
from api.periodic import run_periodically
from api.tickets import service as tickets
from api.tickets.models import Ticket, TicketStatus
from api.tickets.schemas import TicketCreate
from common.influx import InfluxUnavailable
from common.settings import ApiSettings, Settings
from tests.api.conftest import JWT_SECRET, api_settings
from tests.api.helpers import small_county
from tests.api.notify.recorder import RecordingServer


def test_first_admin_token_and_register_from_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("RURALWATER_API__DATABASE_URL", url)
    monkeypatch.setattr("api.cli.get_settings", lambda: Settings())
    register = tmp_path / "register.json"
    small_county().write(register)
    assert main(["migrate"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("first-admin-pass\n"))
    assert main(["create-admin", "boss", "--password-stdin"]) == 0
    assert main(["create-token", "analysis", "--kind", "analysis"]) == 0
    assert main(["import-register", str(register)]) == 0
    assert main(["create-token", "analysis", "--kind", "analysis"]) == 1  # exists
    output = capsys.readouterr().out.splitlines()
    api_key = output[2]
    app = create_app(Settings(api=ApiSettings(database_url=url, notify_loop=False,
                                              replan_loop=False,
                                              jwt_secret=SecretStr(JWT_SECRET))))
    with TestClient(app) as client:
        login = client.post("/api/v1/auth/token",
                            data={"username": "boss", "password": "first-admin-pass"})
        assert login.status_code == 200
        villages = client.get("/api/v1/assets/villages",
                              headers={"Authorization": f"Bearer {api_key}"})
        assert [v["id"] for v in villages.json()] == ["v001", "v002", "v003"]
    app.state.engine.dispose()


@pytest.fixture
def cli_database(database_url: str, db_session: Session,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """The session database (SQLite or PostgreSQL), emptied, as the CLI's database."""
    monkeypatch.setenv("RURALWATER_API__DATABASE_URL", database_url)
    monkeypatch.setenv("RURALWATER_INFLUX__URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RURALWATER_INFLUX__TIMEOUT_S", "1")
    monkeypatch.setattr("api.cli.get_settings", lambda: Settings())
    return database_url


def _key_works(app: FastAPI, key: str) -> int:
    with TestClient(app) as client:
        return client.get("/api/v1/alerts",
                          headers={"Authorization": f"Bearer {key}"}).status_code


def test_ensure_token_provisions_a_key_from_the_environment_idempotently(
        cli_database: str, app: FastAPI, db_session: Session,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-token"]) == 0
    key = capsys.readouterr().out.strip()
    assert api_key_parts(key) is not None
    monkeypatch.setenv("ANALYSIS_KEY", key)
    command = ["ensure-token", "analysis", "--kind", "analysis", "--from-env", "ANALYSIS_KEY"]
    assert main(command) == 0
    assert main(command) == 0
    assert capsys.readouterr().out.split()[-1] == "unchanged"
    assert _key_works(app, key) == 200
    rotated = new_api_key().token
    monkeypatch.setenv("ANALYSIS_KEY", rotated)
    assert main(command) == 0
    assert capsys.readouterr().out.strip().endswith("updated")
    assert _key_works(app, rotated) == 200
    assert _key_works(app, key) == 401
    actions = [e.action for e in db_session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "service_token")
        .order_by(AuditEntry.id))]
    assert actions == ["token.create", "token.update"]


def test_ensure_token_refuses_a_malformed_or_missing_key(
        cli_database: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANALYSIS_KEY", "rw_notakey")
    command = ["ensure-token", "analysis", "--kind", "analysis", "--from-env", "ANALYSIS_KEY"]
    assert main(command) == 1
    assert "not an API key" in capsys.readouterr().err
    monkeypatch.delenv("ANALYSIS_KEY")
    assert main(command) == 2
    assert "ANALYSIS_KEY" in capsys.readouterr().err


def test_verify_every_runs_passes_until_told_to_stop(
        cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    # no resolved tickets: each pass is quick; InfluxDB is not even asked
    assert main(["verify", "--every", "0.01", "--passes", "3"]) == 0
    assert main(["verify"]) == 0


def test_a_failing_pass_is_logged_and_the_loop_goes_on() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise InfluxUnavailable("InfluxDB at http://127.0.0.1:9: refused")

    stop = threading.Event()
    assert run_periodically(flaky, every_s=0.01, passes=3, stop=stop) == 3
    assert calls == [0, 1, 2]
    stop.set()
    assert run_periodically(flaky, every_s=0.01, passes=None, stop=stop) == 0


def test_notify_sends_due_notices_as_its_own_process(
        cli_database: str, db_session: Session, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = RecordingServer().start()
    try:
        config = tmp_path / "notify.yaml"
        config.write_text(yaml.safe_dump({
            "channels": {"ops": {"type": "webhook", "url": server.url}},
            "routes": {"dispatcher": ["ops"]}}))
        monkeypatch.setenv("RURALWATER_API__NOTIFY_CONFIG_FILE", str(config))
        notify.raise_notice(db_session=db_session, subject="ticket:1", title="leak at v001",
                            text="night flow 2.5 m3/h", policy="emergency")
        assert main(["notify", "--every", "0.01", "--passes", "2"]) == 0
        assert len(server.requests) == 1  # sent once; the second pass finds nothing due
        assert "leak at v001" in json.dumps(server.requests[0].json())
    finally:
        server.stop()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_background_reminds_replans_and_verifies_in_one_process(
        database_url: str, db_session: Session, make_crew: Callable[..., Crew],
        tmp_path: Path) -> None:
    server = RecordingServer().start()
    config = tmp_path / "notify.yaml"
    config.write_text(yaml.safe_dump({"channels": {"ops": {"type": "webhook",
                                                           "url": server.url}},
                                      "routes": {"dispatcher": ["ops"], "crew": ["ops"]}}))
    settings = api_settings(database_url, tmp_path, notify_config_file=config,
                            notify_interval_s=0.05, replan_poll_s=0.05, replan_debounce_s=0,
                            verify_interval_s=0.05, planning_time_limit_s=1)
    assets.import_county(db_session=db_session, county=small_county(), actor=SYSTEM)
    make_crew("north")
    opened = tickets.create(db_session=db_session, actor=SYSTEM, settings=settings.api,
                            ticket_in=TicketCreate(title="no water at the school",
                                                   village_id="v001"))
    resolved = tickets.create(db_session=db_session, actor=SYSTEM, settings=settings.api,
                              ticket_in=TicketCreate(title="old job", village_id="v001"))
    resolved.status = TicketStatus.RESOLVED  # a hand-made ticket: telemetry cannot judge it
    resolved.resolved_at = resolved.created_at
    db_session.commit()
    stop, started = threading.Event(), threading.Event()
    worker = threading.Thread(target=run_background, args=(settings, stop, started))
    worker.start()
    try:
        assert started.wait(30)

        def status_of(ticket_id: int) -> tuple[TicketStatus, dict[str, Any]]:
            db_session.expire_all()
            row = db_session.get(Ticket, ticket_id)
            assert row is not None
            return row.status, row.verification

        assert _wait_for(lambda: status_of(opened.id)[0] is TicketStatus.SCHEDULED)
        assert _wait_for(lambda: bool(server.requests))  # dispatchers or crew were told
        assert _wait_for(lambda: status_of(resolved.id)[1].get("result") == "pending")
    finally:
        stop.set()
        worker.join(30)
        server.stop()
    assert not worker.is_alive()


def test_background_command_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'background.sqlite3'}"
    migrate.upgrade(database_url)
    env = os.environ | {"RURALWATER_API__DATABASE_URL": database_url,
                        "RURALWATER_INFLUX__URL": "http://127.0.0.1:9",
                        "RURALWATER_LOG_LEVEL": "INFO"}
    process = subprocess.Popen([sys.executable, "-m", "api", "background"], env=env,
                               stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "background: reminders every" in line:
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert "background: stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
