"""The escalation ladder, walked on a simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from api.notify.escalation import (
    DEFAULT_POLICY,
    EscalationPolicy,
    EscalationStep,
    Sent,
    decide,
)
from api.notify.message import NoticeReason

RAISED = datetime(2026, 7, 14, 1, 0, tzinfo=UTC)


def walk(policy: EscalationPolicy, *, until_min: int, tick_min: int = 5,
         acknowledged_at_min: int | None = None) -> list[tuple[int, list[str], str, int]]:
    """Run the policy on a clock ticking every ``tick_min``: (minute, audiences, reason, n)."""
    history: list[Sent] = []
    sent: list[tuple[int, list[str], str, int]] = []
    for minute in range(0, until_min + 1, tick_min):
        now = RAISED + timedelta(minutes=minute)
        acknowledged = acknowledged_at_min is not None and minute >= acknowledged_at_min
        decision = decide(policy, raised_at=RAISED, history=history,
                          acknowledged=acknowledged, now=now)
        if decision.send is not None:
            history.append(Sent(decision.send.step, now))
            sent.append((minute, decision.send.audiences, decision.send.reason.value,
                         decision.send.reminder_number))
    return sent


def test_default_ladder_reminds_and_escalates_crew_dispatcher_bureau_head() -> None:
    assert walk(DEFAULT_POLICY, until_min=300) == [
        (0, ["crew"], "first", 0),
        (30, ["crew"], "reminder", 1),
        (60, ["dispatcher", "crew"], "escalation", 0),
        (90, ["dispatcher", "crew"], "reminder", 1),
        (120, ["dispatcher", "crew"], "reminder", 2),
        (150, ["dispatcher", "crew"], "reminder", 3),
        (180, ["bureau_head", "dispatcher", "crew"], "escalation", 0),
        (240, ["bureau_head", "dispatcher", "crew"], "reminder", 1),
        (300, ["bureau_head", "dispatcher", "crew"], "reminder", 2),
    ]


def test_acknowledgement_stops_everything_after_it() -> None:
    sent = walk(DEFAULT_POLICY, until_min=300, acknowledged_at_min=75)
    assert [minute for minute, *_ in sent] == [0, 30, 60]


def test_acknowledged_notice_needs_no_further_check() -> None:
    decision = decide(DEFAULT_POLICY, raised_at=RAISED, history=[], acknowledged=True,
                      now=RAISED)
    assert decision.send is None and decision.next_check_at is None


def test_next_check_is_the_next_reminder_or_the_next_step_whichever_first() -> None:
    first = decide(DEFAULT_POLICY, raised_at=RAISED, history=[], acknowledged=False,
                   now=RAISED + timedelta(minutes=50))
    assert first.send is not None and first.send.reason is NoticeReason.FIRST
    # reminder due at 80 min, but the dispatcher step starts at 60
    assert first.next_check_at == RAISED + timedelta(minutes=60)
    waiting = decide(DEFAULT_POLICY, raised_at=RAISED,
                     history=[Sent(0, RAISED + timedelta(minutes=50))], acknowledged=False,
                     now=RAISED + timedelta(minutes=55))
    assert waiting.send is None and waiting.next_check_at == RAISED + timedelta(minutes=60)


def test_a_scheduler_that_was_down_jumps_to_the_step_in_force_with_every_audience() -> None:
    decision = decide(DEFAULT_POLICY, raised_at=RAISED, history=[], acknowledged=False,
                      now=RAISED + timedelta(hours=5))
    assert decision.send is not None
    assert decision.send.step == 2
    assert decision.send.reason is NoticeReason.ESCALATION
    assert decision.send.audiences == ["bureau_head", "dispatcher", "crew"]


def test_reminders_stop_at_max_reminders_and_the_last_step_then_goes_quiet() -> None:
    policy = EscalationPolicy(copy_earlier_audiences=False, steps=[
        EscalationStep(audience="crew", after_min=0, repeat_every_min=10, max_reminders=1),
        EscalationStep(audience="dispatcher", after_min=60, repeat_every_min=10,
                       max_reminders=2),
    ])
    assert walk(policy, until_min=240) == [
        (0, ["crew"], "first", 0),
        (10, ["crew"], "reminder", 1),
        (60, ["dispatcher"], "escalation", 0),
        (70, ["dispatcher"], "reminder", 1),
        (80, ["dispatcher"], "reminder", 2),
    ]
    done = decide(policy, raised_at=RAISED,
                  history=[Sent(1, RAISED + timedelta(minutes=m)) for m in (60, 70, 80)],
                  acknowledged=False, now=RAISED + timedelta(minutes=90))
    assert done.send is None and done.next_check_at is None


def test_policy_must_start_at_zero_and_climb() -> None:
    with pytest.raises(ValidationError, match="after_min = 0"):
        EscalationPolicy(steps=[EscalationStep(audience="crew", after_min=5,
                                               repeat_every_min=10)])
    with pytest.raises(ValidationError, match="strictly later"):
        EscalationPolicy(steps=[
            EscalationStep(audience="crew", after_min=0, repeat_every_min=10),
            EscalationStep(audience="dispatcher", after_min=0, repeat_every_min=10)])
