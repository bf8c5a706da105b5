"""analyse() runs every detector: findings of each module, what it judged, valid alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from analysis.params import AnalysisParams
from analysis.pipeline import analyse
from common.alerts import Alert, AlertKind
from common.schema import ANALYSIS_FIELDS
from tests.analysis.data.reference import Reference, load


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load("devices")


def test_one_pass_covers_every_alert_kind_and_raises_each_modules_findings(ref: Reference):
    now = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)
    result = analyse(ref.readings[ref.readings["time"] <= pd.Timestamp(now)], ref.county,
                     AnalysisParams(), now)
    assert set(result.evaluated) == set(AlertKind)
    keys = {f.key for f in result.findings}
    monitored = ref.incident("zero_balance")["target"]
    assert {"device_silent:v001-h0002", "low_battery:v001-h0003",
            f"valve_closed:{monitored}", "tamper:v002-h0004"} <= keys
    assert {"v001", "v002"} <= result.evaluated[AlertKind.SHORTAGE]
    assert "aq-v001-outlet" in result.evaluated[AlertKind.QUALITY_EVENT]
    columns = set(ANALYSIS_FIELDS["supply_outlook"]) | {"village", "township"}
    assert columns <= set(result.supply.columns) and len(result.supply) == 2
    for finding in result.findings:  # each finding makes a valid alert for the API
        Alert(key=finding.key, kind=finding.kind, severity=finding.severity,
              title=finding.title, place=finding.place, started_at=finding.started_at,
              detected_at=now, updated_at=now, evidence=finding.evidence,
              window=finding.window, plan_level=finding.plan_level)
        assert finding.started_at <= now


def test_a_pass_over_no_readings_judges_nothing(ref: Reference):
    now = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)
    empty = ref.readings.iloc[0:0]
    result = analyse(empty, ref.county, AnalysisParams(), now)
    assert result.findings == []
    assert not any(result.evaluated.values())
    assert result.supply.empty
