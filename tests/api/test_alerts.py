"""Alert intake: idempotent by key, new evidence updates the same alert and ticket."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from common.alerts import AlertKind, AlertStatus, Place, Severity
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
