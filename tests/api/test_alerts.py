"""Alert intake: idempotent by key, new evidence updates the same alert and ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from api.alerts import views
from api.auth.security import Principal
from api.errors import Forbidden
from common.alerts import Alert, AlertKind, AlertStatus, Place, Severity
from tests.api.helpers import T0, alert, import_county, put_alert


def _analysis_key(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    issued = client.post("/api/v1/service-tokens", headers=admin,
                         json={"name": "analysis", "kind": "analysis"}).json()
    return {"Authorization": f"Bearer {issued['token']}"}


def test_new_alert_opens_one_ticket_and_a_repeat_changes_nothing(
        client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    key = _analysis_key(client, admin)
    first = put_alert(client, key, alert())
    assert first.status_code == 201, first.text
    repeat = put_alert(client, key, alert())
    assert repeat.status_code == 200
    assert repeat.json()["revision"] == 1
    assert repeat.json()["ticket_id"] == first.json()["ticket_id"] is not None
    ticket = client.get(f"/api/v1/tickets/{first.json()['ticket_id']}", headers=admin).json()
    assert (ticket["type"], ticket["priority"], ticket["required_skill"],
            ticket["sla_class"]) == ("leak", "high", "pipe", "ordinary")
    assert ticket["dma_id"] == "dma-v001" and ticket["village_id"] == "v001"
    assert len(client.get("/api/v1/tickets", headers=admin).json()) == 1


def test_new_evidence_updates_the_same_alert_and_ticket(client: TestClient,
                                                        admin: dict[str, str]) -> None:
    import_county(client, admin)
    key = _analysis_key(client, admin)
    first = put_alert(client, key, alert()).json()
    worse = alert(severity=Severity.CRITICAL, updated_at=T0 + timedelta(hours=1),
                  evidence={"night_flow_m3h": 4.0, "night_baseline_m3h": 1.0})
    second = put_alert(client, key, worse).json()
    assert second["revision"] == 2 and second["ticket_id"] == first["ticket_id"]
    assert second["evidence"]["night_flow_m3h"] == 4.0
    ticket = client.get(f"/api/v1/tickets/{first['ticket_id']}", headers=admin).json()
    assert ticket["priority"] == "urgent"  # a critical alert is urgent


def test_resolution_is_recorded(client: TestClient, admin: dict[str, str]) -> None:
    key = _analysis_key(client, admin)
    put_alert(client, key, alert())
    resolved = put_alert(client, key, alert(status=AlertStatus.RESOLVED,
                                            resolved_at=T0 + timedelta(days=1),
                                            updated_at=T0 + timedelta(days=1)))
    assert resolved.json()["status"] == "resolved"
    actions = [e["action"] for e in client.get(
        "/api/v1/audit", headers=admin, params={"entity_type": "alert"}).json()]
    assert actions == ["alert.resolve", "alert.create"]


def test_key_in_url_and_body_must_agree(client: TestClient, admin: dict[str, str]) -> None:
    body = alert()
    response = client.put("/api/v1/alerts/night_flow:dma-v999", headers=admin,
                          json=body.model_dump(mode="json"))
    assert response.status_code == 422
    assert "differs" in response.json()["detail"]


def test_only_the_analysis_or_an_admin_may_send_alerts(client: TestClient,
                                                       dispatcher: dict[str, str]) -> None:
    response = put_alert(client, dispatcher, alert())
    assert response.status_code == 403
    assert "service:analysis" in response.json()["detail"]


def test_shortage_alerts_open_no_ticket(client: TestClient, admin: dict[str, str]) -> None:
    body = alert(AlertKind.SHORTAGE, "v001", place=Place(village="v001", scheme="v001"),
                 plan_level="IV")
    assert put_alert(client, admin, body).json()["ticket_id"] is None


def test_a_monitored_household_raises_the_priority(client: TestClient,
                                                   admin: dict[str, str]) -> None:
    import_county(client, admin)
    body = alert(AlertKind.LOW_BATTERY, "v001-h0001", severity=Severity.LOW,
                 place=Place(village="v001", household="v001-h0001", monitored=True))
    ticket_id = put_alert(client, admin, body).json()["ticket_id"]
    ticket = client.get(f"/api/v1/tickets/{ticket_id}", headers=admin).json()
    assert ticket["priority"] == "high"


def test_list_filters_and_acknowledge(client: TestClient, admin: dict[str, str],
                                      dispatcher: dict[str, str],
                                      viewer: dict[str, str]) -> None:
    put_alert(client, admin, alert())
    put_alert(client, admin, alert(AlertKind.PUMP_FAULT, "pump-v002-1",
                                   place=Place(village="v002", device="pump-v002-1")))
    pumps = client.get("/api/v1/alerts", headers=viewer, params={"kind": "pump_fault"}).json()
    assert [a["key"] for a in pumps] == ["pump_fault:pump-v002-1"]
    assert client.post("/api/v1/alerts/pump_fault:pump-v002-1/acknowledge", headers=viewer,
                       json={}).status_code == 403
    acked = client.post("/api/v1/alerts/pump_fault:pump-v002-1/acknowledge",
                        headers=dispatcher, json={"note": "crew informed"}).json()
    assert acked["acknowledged_by"] == "user:dora"
    open_unacked = client.get("/api/v1/alerts", headers=viewer,
                              params={"acknowledged": "false", "status": "open"}).json()
    assert [a["key"] for a in open_unacked] == ["night_flow:dma-v001"]


def test_a_shortage_alert_activates_the_emergency_plan(client: TestClient,
                                                       admin: dict[str, str]) -> None:
    import_county(client, admin)
    body = alert(AlertKind.SHORTAGE, "v001", place=Place(village="v001", scheme="v001"),
                 plan_level="III", evidence={"days_to_shortfall": 3.0})
    put_alert(client, admin, body)
    put_alert(client, admin, body)  # a repeat: still one activation
    activations = client.get("/api/v1/emergency/activations", headers=admin).json()
    assert [(a["alert_key"], a["level"]) for a in activations] == [("shortage:v001", "III")]


def _answers(client: TestClient, requests: list[tuple[dict[str, str], str, bytes]]
             ) -> list[tuple[int, object]]:
    answers = []
    for headers, path, body in requests:
        answer = client.put(path, headers=headers, content=body)
        answers.append((answer.status_code, answer.json()))
    return answers


def test_the_short_way_answers_as_fastapis_way_does(
        client: TestClient, admin: dict[str, str], dispatcher: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis' requests skip FastAPI's body and dependency solving (IntakeRoute);
    every answer, errors included, is the one FastAPI's way gives."""
    import_county(client, admin)
    key = _analysis_key(client, admin)
    body = alert().model_dump_json().encode()
    path = f"/api/v1/alerts/{alert().key}"
    as_json = {"Content-Type": "application/json"}
    assert put_alert(client, key, alert()).status_code == 201  # the token is now cached
    client.get("/api/v1/alerts", headers=dispatcher)
    requests = [
        (key | as_json, path, body),  # a repeat: 200
        (key | as_json, "/api/v1/alerts/night_flow:dma-v002", body),  # keys differ
        (key | as_json, path, body.replace(b'"severity":"high",', b"")),  # missing field
        (key | as_json, path, body[:-1]),  # not JSON
        (key | as_json, path, body.replace(b"{", b'{"extra":1,', 1)),
        (key | as_json, "/api/v1/alerts/x", body),  # the URL's key is too short
        (dispatcher | as_json, path, body),  # a known caller who may not send alerts
        (as_json, path, body),  # nobody
        (key | {"Content-Type": "text/plain"}, path, body),
    ]
    short_ways: list[bool] = []
    well_formed = views._well_formed

    async def noting(request: Request) -> tuple[Alert, Principal] | None:
        try:
            found = await well_formed(request)
        except Forbidden:  # answered on the short way
            short_ways.append(True)
            raise
        short_ways.append(found is not None)
        return found

    monkeypatch.setattr(views, "_well_formed", noting)
    short = _answers(client, requests)
    assert short_ways == [True, False, False, False, False, False, True, False, False]

    async def never(_request: Request) -> None:
        return None

    monkeypatch.setattr(views, "_well_formed", never)
    assert _answers(client, requests) == short
    assert [status for status, _ in short] == [200, 422, 422, 422, 422, 422, 403, 401, 422]
