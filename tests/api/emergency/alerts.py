"""Shortage alerts as the analysis layer sends them (common.alerts contract)."""

from __future__ import annotations

from datetime import UTC, datetime

from common.alerts import (
    Alert,
    AlertKind,
    AlertStatus,
    Evidence,
    Place,
    PlanLevel,
    Severity,
    alert_key,
)

STARTED = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)


def shortage(level: PlanLevel | None, *, scheme: str = "v003",
             status: AlertStatus = AlertStatus.OPEN, evidence: Evidence | None = None) -> Alert:
    return Alert(key=alert_key(AlertKind.SHORTAGE, scheme), kind=AlertKind.SHORTAGE,
                 severity=Severity.HIGH, status=status,
                 title=f"Supply at {scheme} will fall short of demand",
                 place=Place(township="t01", village=scheme, scheme=scheme),
                 started_at=STARTED, detected_at=STARTED, updated_at=STARTED,
                 evidence=evidence if evidence is not None else {"days_to_shortfall": 5.0},
                 plan_level=level)
