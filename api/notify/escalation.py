"""Reminders that repeat and escalate until someone acknowledges: a pure policy.

A policy is a ladder of steps, each an audience (crew, dispatcher, bureau head...) that
comes in ``after_min`` minutes after the notice was raised and is reminded every
``repeat_every_min`` while nobody acknowledges. Given what has been sent so far, whether
and when it was acknowledged and the time now, ``decide`` says what to send now (if
anything) and when to look again. No clock, no database: the service feeds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.notify.message import NoticeReason


class EscalationStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    audience: Annotated[str, Field(min_length=1, description="role the step notifies")]
    after_min: float = Field(ge=0, description="minutes after raising when the step starts")
    repeat_every_min: float = Field(gt=0, description="minutes between reminders")
    max_reminders: int | None = Field(
        default=None, ge=0, description="reminders at this step; None: until the next step")


class EscalationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: Annotated[list[EscalationStep], Field(min_length=1)]
    copy_earlier_audiences: bool = Field(
        default=True, description="an escalated notice also goes to the audiences below")

    @model_validator(mode="after")
    def _steps_in_order(self) -> EscalationPolicy:
        if self.steps[0].after_min != 0:
            raise ValueError("the first escalation step must start at after_min = 0")
        starts = [step.after_min for step in self.steps]
        if any(later <= earlier for earlier, later in zip(starts, starts[1:], strict=False)):
            raise ValueError(f"escalation steps must start strictly later each: {starts}")
        return self

    def step_at(self, raised_at: datetime, now: datetime) -> int:
        """Index of the step in force at ``now`` (0 before the first even starts)."""
        elapsed_min = (now - raised_at) / timedelta(minutes=1)
        current = 0
        for index, step in enumerate(self.steps):
            if step.after_min <= elapsed_min:
                current = index
        return current

    def audiences(self, step: int) -> list[str]:
        """Who receives a notice sent at ``step``, nearest audience first."""
        if not self.copy_earlier_audiences:
            return [self.steps[step].audience]
        ordered = [self.steps[index].audience for index in range(step, -1, -1)]
        return list(dict.fromkeys(ordered))


#: the default ladder: crew, then dispatcher after an hour, bureau head after three
DEFAULT_POLICY = EscalationPolicy(steps=[
    EscalationStep(audience="crew", after_min=0, repeat_every_min=30),
    EscalationStep(audience="dispatcher", after_min=60, repeat_every_min=30),
    EscalationStep(audience="bureau_head", after_min=180, repeat_every_min=60),
])


#: emergency plan activations: the dispatcher at once, the bureau head after an hour
EMERGENCY_POLICY = EscalationPolicy(steps=[
    EscalationStep(audience="dispatcher", after_min=0, repeat_every_min=30),
    EscalationStep(audience="bureau_head", after_min=60, repeat_every_min=60),
])


@dataclass(frozen=True)
class Sent:
    """One notice already sent: at which step and when."""

    step: int
    at: datetime


@dataclass(frozen=True)
class Send:
    """Send now: the step, its audiences, why, and which reminder this is (0: none)."""

    step: int
    audiences: list[str]
    reason: NoticeReason
    reminder_number: int


@dataclass(frozen=True)
class Decision:
    """What to send now (``send``, possibly None) and when to decide again (None: never)."""

    send: Send | None
    next_check_at: datetime | None


def decide(policy: EscalationPolicy, *, raised_at: datetime, history: Sequence[Sent],
           acknowledged: bool, now: datetime) -> Decision:
    """The next move for one notice.

    A step that has sent nothing yet sends at once (the first notice, or the escalation when
    its time has come, even if the scheduler missed the moment); after that it repeats every
    ``repeat_every_min`` from its last send, up to ``max_reminders``. Steps that the clock
    skipped are not sent separately: the escalated notice copies their audiences.
    """
    if acknowledged:
        return Decision(send=None, next_check_at=None)
    if now < raised_at:
        return Decision(send=None, next_check_at=raised_at)
    index = policy.step_at(raised_at, now)
    step = policy.steps[index]
    next_step_at = (raised_at + timedelta(minutes=policy.steps[index + 1].after_min)
                    if index + 1 < len(policy.steps) else None)
    sent_here = sorted(record.at for record in history if record.step == index)
    if not sent_here:
        reason = NoticeReason.FIRST if index == 0 else NoticeReason.ESCALATION
        send = Send(index, policy.audiences(index), reason, 0)
        return Decision(send, _earliest(now + timedelta(minutes=step.repeat_every_min),
                                        next_step_at))
    reminders_so_far = len(sent_here) - 1
    exhausted = step.max_reminders is not None and reminders_so_far >= step.max_reminders
    due_at = sent_here[-1] + timedelta(minutes=step.repeat_every_min)
    if exhausted:
        return Decision(send=None, next_check_at=next_step_at)
    if due_at <= now:
        send = Send(index, policy.audiences(index), NoticeReason.REMINDER, reminders_so_far + 1)
        return Decision(send, _earliest(now + timedelta(minutes=step.repeat_every_min),
                                        next_step_at))
    return Decision(send=None, next_check_at=_earliest(due_at, next_step_at))


def _earliest(first: datetime, second: datetime | None) -> datetime:
    return first if second is None else min(first, second)
