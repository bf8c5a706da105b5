"""The real app on its own SQLite file with every table created from the models, so the
api-ops routes can be exercised before their migrations exist; real JWT sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

import api.models  # noqa: F401 - registers every api/ table on Base
from api.auth.models import Role, User
from api.auth.security import issue_access_token
from api.db import Base
from api.emergency import models as emergency_models  # noqa: F401
from api.main import create_app
from api.notify import models as notify_models  # noqa: F401
from common.settings import ApiSettings, InfluxSettings, Settings

JWT_SECRET = "ops-test-secret-" + "y" * 32


@contextmanager
def ops_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        api=ApiSettings(database_url=f"sqlite:///{tmp_path / 'ops.sqlite3'}",
                        jwt_secret=SecretStr(JWT_SECRET), jwt_secret_file=tmp_path / "jwt"),
        influx=InfluxSettings(url="http://127.0.0.1:9", timeout_s=1.0))
    app: FastAPI = create_app(settings)
    Base.metadata.create_all(app.state.engine)
    with TestClient(app) as client:
        yield client


def sign_in(client: TestClient, username: str, role: Role,
            crew_id: int | None = None) -> dict[str, str]:
    """Add a user (no password needed for a JWT test) and return its bearer header."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        session.add(User(username=username, role=role, crew_id=crew_id, password_hash="-"))
        session.commit()
    token = issue_access_token(username=username, secret=JWT_SECRET, minutes=10)
    return {"Authorization": f"Bearer {token}"}
