"""Alert lifecycle across passes: open, update, escalate, resolve, restart without duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analysis.findings import Finding
from analysis.tracker import Action, AlertTracker, Target, evidence_changed
from common.alerts import AlertKind, AlertStatus, Place, Severity

T0 = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)
LEAK = AlertKind.NIGHT_FLOW


def leak(night_flow: float = 2.0, severity: Severity = Severity.MEDIUM,
         started: datetime = T0 - timedelta(hours=20), subject: str = "dma-v001") -> Finding:
    return Finding(kind=LEAK, subject=subject, severity=severity,
                   title=f"Night flow {night_flow:.2f} m3/h in {subject}",
                   place=Place(village="v001", dma=subject), started_at=started,
                   evidence={"night_flow_m3h": night_flow, "baseline_m3h": 1.0})


def shortage(level: str, severity: Severity = Severity.HIGH) -> Finding:
    return Finding(kind=AlertKind.SHORTAGE, subject="v002", severity=severity,
                   title=f"Shortage, plan level {level}", place=Place(village="v002",
                                                                        scheme="v002"),
                   started_at=T0, evidence={"days_to_shortfall": 5.0},
                   plan_level=level)  # type: ignore[arg-type]


JUDGED = {LEAK: {"dma-v001", "dma-v002"}, AlertKind.SHORTAGE: {"v002"}}


@pytest.fixture
def tracker(tmp_path: Path) -> AlertTracker:
    return AlertTracker(tmp_path / "state" / "alerts.sqlite3")


def test_a_new_finding_opens_one_alert_detected_now(tracker: AlertTracker) -> None:
    [change] = tracker.apply_findings([leak()], JUDGED, T0)
    assert change.action is Action.OPEN
    alert = change.alert
    assert alert.key == "night_flow:dma-v001" and alert.status is AlertStatus.OPEN
    assert alert.detected_at == alert.updated_at == T0
    assert alert.started_at == T0 - timedelta(hours=20)
    assert [a.key for a in tracker.open_alerts()] == ["night_flow:dma-v001"]


def test_the_same_evidence_again_changes_nothing(tracker: AlertTracker) -> None:
    tracker.apply_findings([leak(2.0)], JUDGED, T0)
    assert tracker.apply_findings([leak(2.02)], JUDGED, T0 + timedelta(minutes=15)) == []
    assert tracker.pending_count(Target.API) == 1


def test_growing_evidence_updates_the_alert_and_keeps_when_it_was_detected(
        tracker: AlertTracker) -> None:
    tracker.apply_findings([leak(2.0)], JUDGED, T0)
    later = T0 + timedelta(hours=1)
    [change] = tracker.apply_findings([leak(3.0, started=T0 - timedelta(hours=10))],
                                      JUDGED, later)
    assert change.action is Action.UPDATE
    alert = change.alert
    assert alert.evidence["night_flow_m3h"] == 3.0
    assert alert.title == "Night flow 3.00 m3/h in dma-v001"
    assert (alert.detected_at, alert.updated_at) == (T0, later)
    assert alert.started_at == T0 - timedelta(hours=20)  # the earliest start is kept


def test_severity_escalates_and_does_not_drop_while_open(tracker: AlertTracker) -> None:
    tracker.apply_findings([leak(severity=Severity.MEDIUM)], JUDGED, T0)
    [up] = tracker.apply_findings([leak(severity=Severity.HIGH)], JUDGED, T0 + timedelta(hours=1))
    assert up.alert.severity is Severity.HIGH
    assert tracker.apply_findings([leak(severity=Severity.LOW)], JUDGED,
                                  T0 + timedelta(hours=2)) == []
    assert tracker.open_alerts()[0].severity is Severity.HIGH


def test_the_plan_level_follows_the_data_both_ways(tracker: AlertTracker) -> None:
    tracker.apply_findings([shortage("IV")], JUDGED, T0)
    [up] = tracker.apply_findings([shortage("II")], JUDGED, T0 + timedelta(days=1))
    [down] = tracker.apply_findings([shortage("III")], JUDGED, T0 + timedelta(days=2))
    assert (up.alert.plan_level, down.alert.plan_level) == ("II", "III")


def test_an_alert_resolves_when_its_subject_was_judged_and_not_found(
        tracker: AlertTracker) -> None:
    tracker.apply_findings([leak()], JUDGED, T0)
    later = T0 + timedelta(days=1)
    [change] = tracker.apply_findings([], JUDGED, later)
    assert change.action is Action.RESOLVE
    assert change.alert.status is AlertStatus.RESOLVED
    assert change.alert.resolved_at == change.alert.updated_at == later
    assert tracker.open_alerts() == []


def test_an_alert_stays_open_while_its_subject_cannot_be_judged(tracker: AlertTracker) -> None:
    tracker.apply_findings([leak()], JUDGED, T0)
    assert tracker.apply_findings([], {LEAK: {"dma-v002"}}, T0 + timedelta(hours=1)) == []
    assert len(tracker.open_alerts()) == 1


def test_a_recurring_problem_reopens_its_alert_with_a_new_detection_time(
        tracker: AlertTracker) -> None:
    tracker.apply_findings([leak()], JUDGED, T0)
    tracker.apply_findings([], JUDGED, T0 + timedelta(days=1))
    again = T0 + timedelta(days=3)
    [change] = tracker.apply_findings([leak(started=again - timedelta(hours=2))], JUDGED, again)
    assert change.action is Action.REOPEN
    assert change.alert.status is AlertStatus.OPEN and change.alert.resolved_at is None
    assert change.alert.detected_at == again


def test_a_restarted_tracker_neither_reopens_nor_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    with AlertTracker(path) as first:
        first.apply_findings([leak(), leak(subject="dma-v002")], JUDGED, T0)
    with AlertTracker(path) as second:
        assert second.apply_findings([leak(), leak(subject="dma-v002")], JUDGED,
                                     T0 + timedelta(minutes=15)) == []
        assert len(second.open_alerts()) == 2
        assert [i.alert.key for i in second.pending(Target.API)] == [
            "night_flow:dma-v001", "night_flow:dma-v002"]


def test_every_change_is_queued_once_per_target_in_order(tracker: AlertTracker) -> None:
    tracker.apply_findings([leak(2.0)], JUDGED, T0)
    tracker.apply_findings([leak(4.0)], JUDGED, T0 + timedelta(hours=1))
    tracker.apply_findings([], JUDGED, T0 + timedelta(hours=2))
    for target in Target:
        assert [i.action for i in tracker.pending(target)] == [
            Action.OPEN, Action.UPDATE, Action.RESOLVE]
    items = tracker.pending(Target.API)
    tracker.mark_delivered(items[:2])
    assert [i.action for i in tracker.pending(Target.API)] == [Action.RESOLVE]
    assert tracker.pending_count(Target.INFLUX) == 3


def test_duplicate_findings_in_one_pass_make_one_alert_of_the_worst_severity(
        tracker: AlertTracker) -> None:
    changes = tracker.apply_findings([leak(severity=Severity.LOW),
                                      leak(severity=Severity.HIGH)], JUDGED, T0)
    assert [c.alert.severity for c in changes] == [Severity.HIGH]


def test_evidence_changes_are_relative_and_names_count() -> None:
    assert not evidence_changed({"a": 100.0}, {"a": 104.0}, 0.05)
    assert evidence_changed({"a": 100.0}, {"a": 106.0}, 0.05)
    assert evidence_changed({"a": 1.0}, {"a": 1.0, "b": 2}, 0.05)
    assert evidence_changed({"a": "pipe"}, {"a": "pump"}, 0.05)
    assert evidence_changed({"a": True}, {"a": False}, 0.05)
    assert not evidence_changed({"a": float("nan")}, {"a": float("nan")}, 0.05)


def test_a_naive_pass_time_is_refused(tracker: AlertTracker) -> None:
    with pytest.raises(ValueError, match="timezone"):
        tracker.apply_findings([], {}, datetime(2026, 6, 3))  # noqa: DTZ001
