"""What a detector reports: a typed finding, before the tracker turns it into an alert.

A :class:`Finding` is one problem present as of the analysis time: its kind, the subject it
is about (a DMA, device, household, analyser parameter or scheme; the alert key is
``<kind>:<subject>``), how bad it is, where it is and the numbers behind it. The tracker
(``analysis.tracker``) keeps one open alert per key and turns findings into
``common.alerts.Alert``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from common.alerts import AlertKind, Evidence, Place, PlanLevel, SeriesWindow, Severity, alert_key


@dataclass(frozen=True)
class Finding:
    """One problem present as of the analysis time."""

    kind: AlertKind
    subject: str
    severity: Severity
    title: str
    place: Place
    started_at: datetime
    evidence: Evidence = field(default_factory=dict)
    window: SeriesWindow | None = None
    plan_level: PlanLevel | None = None

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None:
            raise ValueError(f"{self.kind}:{self.subject}: started_at must be timezone-aware")
        if not self.subject or any(c.isspace() for c in self.subject):
            raise ValueError(f"{self.kind}: subject {self.subject!r} must be one word")

    @property
    def key(self) -> str:
        """The stable alert key (``common.alerts.alert_key``)."""
        return alert_key(self.kind, self.subject)
