"""Sign-in, tokens and roles: each refusal with its clear status code."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.auth.models import Role
from api.main import ConfigurationError, resolve_jwt_secret
from common.settings import ApiSettings, Settings
from tests.api.conftest import PASSWORD, UserFactory


def test_password_login_issues_a_jwt_naming_the_user(client: TestClient,
                                                     admin: dict[str, str]) -> None:
    created = client.post("/api/v1/users", headers=admin, json={
        "username": "dina", "password": "s3cret-enough", "role": "dispatcher"})
    assert created.status_code == 201, created.text
    token = client.post("/api/v1/auth/token",
                        data={"username": "dina", "password": "s3cret-enough"})
    assert token.status_code == 200, token.text
    me = client.get("/api/v1/auth/me",
                    headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert me.json()["name"] == "dina" and me.json()["role"] == "dispatcher"


def test_wrong_password_and_unknown_user_are_refused_alike(
        client: TestClient, make_user: UserFactory) -> None:
    make_user("carl", Role.VIEWER)
    wrong = client.post("/api/v1/auth/token", data={"username": "carl", "password": "nope"})
    unknown = client.post("/api/v1/auth/token", data={"username": "nobody",
                                                      "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_requests_without_or_with_a_forged_token_are_unauthorised(client: TestClient) -> None:
    assert client.get("/api/v1/tickets").status_code == 401
    forged = client.get("/api/v1/tickets", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"] == "Bearer"


def test_only_admins_manage_users(client: TestClient, dispatcher: dict[str, str]) -> None:
    response = client.post("/api/v1/users", headers=dispatcher, json={
        "username": "eve", "password": "s3cret-enough", "role": "admin"})
    assert response.status_code == 403
    assert "needs one of: admin" in response.json()["detail"]


def test_a_crew_member_must_belong_to_a_crew(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/api/v1/users", headers=admin, json={
        "username": "fitter", "password": "s3cret-enough", "role": "crew_member"})
    assert response.status_code == 422
    assert "crew" in response.json()["detail"]


def test_service_token_works_until_revoked(client: TestClient, admin: dict[str, str]) -> None:
    issued = client.post("/api/v1/service-tokens", headers=admin,
                         json={"name": "analysis-1", "kind": "analysis"})
    assert issued.status_code == 201, issued.text
    key = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert client.get("/api/v1/alerts", headers=key).status_code == 200
    # a service token is not a person: no tickets
    assert client.get("/api/v1/tickets", headers=key).status_code == 403
    assert client.delete("/api/v1/service-tokens/analysis-1", headers=admin).status_code == 200
    assert client.get("/api/v1/alerts", headers=key).status_code == 401


def test_user_writes_are_audited(client: TestClient, admin: dict[str, str]) -> None:
    client.post("/api/v1/users", headers=admin, json={
        "username": "gus", "password": "s3cret-enough", "role": "viewer"})
    entries = client.get("/api/v1/audit", headers=admin,
                         params={"entity_type": "user"}).json()
    assert [(e["actor"], e["action"], e["entity_id"]) for e in entries] == [
        ("user:root", "user.create", "gus")]


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(api=ApiSettings(jwt_secret_file=tmp_path / "secret"))
    first = resolve_jwt_secret(settings)
    assert len(first) >= 32
    assert resolve_jwt_secret(settings) == first
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_production_refuses_a_missing_or_placeholder_secret(tmp_path: Path) -> None:
    missing = Settings.model_construct(environment="production", api=ApiSettings(
        jwt_secret_file=tmp_path / "s"))
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        resolve_jwt_secret(missing)
    placeholder = Settings.model_construct(environment="production", api=ApiSettings(
        jwt_secret=SecretStr("changeme")))
    with pytest.raises(ConfigurationError, match="placeholder"):
        resolve_jwt_secret(placeholder)
