"""The admin CLI: migrate, the first admin, a service token, the register import."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.cli import main
from api.main import create_app
from common.settings import ApiSettings, Settings
from tests.api.conftest import JWT_SECRET
from tests.api.helpers import small_county


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
