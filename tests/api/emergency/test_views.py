"""The emergency routes on the real app: read, close, move tasks, and who may."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.auth.models import Role
from api.emergency import service
from api.emergency.plans import default_plan
from common.alerts import PlanLevel

from .alerts import shortage
from .ops_app import ops_client, sign_in


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with ops_client(tmp_path) as test_client:
        yield test_client


def activate(client: TestClient, level: PlanLevel) -> int:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        activation = service.apply_alert(db_session=session, alert=shortage(level),
                                         plan=default_plan())
        assert activation is not None
        return activation.id


def test_anyone_signed_in_reads_plans_and_activations(client: TestClient) -> None:
    viewer = sign_in(client, "vic", Role.VIEWER)
    activation_id = activate(client, "III")
    plans = client.get("/api/v1/emergency/plans", headers=viewer).json()
    assert [plan["name"] for plan in plans] == ["seasonal_shortage"]
    listed = client.get("/api/v1/emergency/activations", params={"live": True},
                        headers=viewer).json()
    assert [(a["id"], a["level"], a["status"]) for a in listed] == [
        (activation_id, "III", "active")]
    detail = client.get(f"/api/v1/emergency/activations/{activation_id}", headers=viewer)
    assert detail.status_code == 200
    body = detail.json()
    assert len(body["tasks"]) == 4 and body["log"][0]["kind"] == "activated"
    assert client.get("/api/v1/emergency/activations/999", headers=viewer).status_code == 404
    assert client.get("/api/v1/emergency/plans").status_code == 401


def test_closing_needs_a_dispatcher_and_force_while_the_data_calls_for_a_level(
        client: TestClient) -> None:
    viewer = sign_in(client, "vic", Role.VIEWER)
    dispatcher = sign_in(client, "dora", Role.DISPATCHER)
    activation_id = activate(client, "II")
    url = f"/api/v1/emergency/activations/{activation_id}/close"
    assert client.post(url, json={"reason": "rain"}, headers=viewer).status_code == 403
    refused = client.post(url, json={"reason": "rain"}, headers=dispatcher)
    assert refused.status_code == 409 and "still calls for level II" in refused.json()["detail"]
    closed = client.post(url, json={"reason": "sensor fault", "force": True},
                         headers=dispatcher)
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed" and closed.json()["closed_by"] == "user:dora"
    assert client.post(url, json={"reason": "x"}, headers=dispatcher).status_code == 422


def test_a_dispatcher_moves_a_task_and_a_wrong_move_is_a_409(client: TestClient) -> None:
    dispatcher = sign_in(client, "dora", Role.DISPATCHER)
    member = sign_in(client, "wu", Role.CREW_MEMBER)
    activation_id = activate(client, "IV")
    detail = client.get(f"/api/v1/emergency/activations/{activation_id}",
                        headers=dispatcher).json()
    task_url = f"/api/v1/emergency/tasks/{detail['tasks'][0]['id']}"
    assert client.patch(task_url, json={"status": "done"}, headers=member).status_code == 403
    done = client.patch(task_url, json={"status": "done", "note": "levels logged"},
                        headers=dispatcher)
    assert done.status_code == 200 and done.json()["status"] == "done"
    again = client.patch(task_url, json={"status": "in_progress"}, headers=dispatcher)
    assert again.status_code == 409 and "allowed: none (final)" in again.json()["detail"]
    unknown = client.patch(task_url, json={"status": "finished"}, headers=dispatcher)
    assert unknown.status_code == 422
