"""Small builders shared by the API tests: a seeded county, alerts, tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from common.alerts import Alert, AlertKind, Place, Severity
from common.register import County
from simulator.county import build_county

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def small_county() -> County:
    """Three villages of eight households: every asset kind, quick to import."""
    return build_county(20260701, 3, 8)


def import_county(client: TestClient, headers: dict[str, str],
                  county: County | None = None) -> County:
    county = county or small_county()
    response = client.post("/api/v1/assets/import/register", headers=headers,
                           json=county.model_dump(mode="json"))
    assert response.status_code == 200, response.text
    return county


def alert(kind: AlertKind = AlertKind.NIGHT_FLOW, subject: str = "dma-v001",
          severity: Severity = Severity.HIGH, **changes: Any) -> Alert:
    place = changes.pop("place", Place(village="v001", dma="dma-v001"))
    fields: dict[str, Any] = {
        "key": f"{kind.value}:{subject}", "kind": kind, "severity": severity,
        "title": f"{kind.value} at {subject}", "place": place,
        "started_at": T0 - timedelta(days=1), "detected_at": T0, "updated_at": T0,
        "evidence": {"night_flow_m3h": 2.5, "night_baseline_m3h": 1.0},
    }
    fields.update(changes)
    return Alert(**fields)


def put_alert(client: TestClient, headers: dict[str, str], body: Alert) -> Any:
    return client.put(f"/api/v1/alerts/{body.key}", headers=headers,
                      json=body.model_dump(mode="json"))


def move(client: TestClient, headers: dict[str, str], ticket_id: int, to: str,
         **fields: Any) -> Any:
    return client.post(f"/api/v1/tickets/{ticket_id}/transitions", headers=headers,
                       json={"to": to, **fields})
