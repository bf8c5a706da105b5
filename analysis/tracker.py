"""Alert state across analysis passes, and the outbox of alert changes not yet delivered.

Each pass hands its findings (``analysis.pipeline.Analysis``) to :meth:`AlertTracker.apply`,
which keeps **one open alert per key** (``<kind>:<subject>``) and returns what changed:

- a finding with no open alert **opens** one (``detected_at`` = the pass time); a finding
  whose alert was resolved earlier **re-opens** it (a new ``detected_at``);
- a finding for an open alert **updates** it when the change matters: severity rises
  (it never drops while the alert is open), the emergency plan level moves (it follows the
  data both ways), the place changes, or an evidence number moves by more than
  ``evidence_tolerance`` (relative) against the evidence last sent. Title, window and
  evidence are then replaced and ``updated_at`` = the pass time; ``detected_at`` and the
  earliest ``started_at`` are kept. Smaller wobbles change nothing, so the ticket service is
  not flooded with updates;
- an open alert whose kind was evaluated for its subject this pass (``Analysis.evaluated``)
  but not found **resolves** (``status = resolved``, ``resolved_at``). A subject the pass
  could not judge (no fresh data) keeps its alert open.

State lives in SQLite (``settings.analysis.state_db``), so a restarted worker neither
re-opens nor duplicates alerts. Every change is appended, in the same transaction, to an
outbox once per delivery target (the ticket service API, the ``alert`` measurement in
InfluxDB); ``analysis.sink`` drains it in order and marks rows delivered. Rows a target
refuses for good move to a dead-letter table instead of blocking the queue.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from analysis.findings import Finding
from analysis.pipeline import Analysis
from common.alerts import Alert, AlertKind, AlertStatus, Evidence, Severity

log = logging.getLogger(__name__)

SEVERITY_RANK: dict[Severity, int] = {
    Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_target ON outbox (target, seq);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


class Target(StrEnum):
    """Where alert changes are delivered."""

    API = "api"  # PUT /api/v1/alerts/{key} on the ticket service
    INFLUX = "influx"  # one point in the ``alert`` measurement


class Action(StrEnum):
    OPEN = "open"
    REOPEN = "reopen"
    UPDATE = "update"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class Change:
    """One alert change a pass made: the whole alert after it."""

    action: Action
    alert: Alert


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A change waiting for one target; ``seq`` orders the outbox."""

    seq: int
    target: Target
    action: Action
    alert: Alert


def subject_of(key: str) -> str:
    """The subject part of an alert key (``night_flow:dma-v003`` -> ``dma-v003``)."""
    return key.split(":", 1)[1]


def evidence_changed(old: Evidence, new: Evidence, tolerance: float) -> bool:
    """Whether ``new`` evidence differs from ``old`` by more than ``tolerance`` (relative).

    Numbers count as changed when they move by more than ``tolerance`` x the larger of the
    two magnitudes; anything else (names, strings, flags, None) when it differs at all.
    """
    if old.keys() != new.keys():
        return True
    for name, before in old.items():
        after = new[name]
        first, second = _number(before), _number(after)
        if first is None or second is None:
            if before != after:
                return True
        elif math.isnan(first) or math.isnan(second):
            if math.isnan(first) != math.isnan(second):
                return True
        elif abs(second - first) > tolerance * max(abs(first), abs(second)):
            return True
    return False


def _number(value: object) -> float | None:
    """``value`` as a float when it is a number (not a flag), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _most_severe(findings: Iterable[Finding]) -> dict[str, Finding]:
    """One finding per key: the most severe (the first of equals)."""
    chosen: dict[str, Finding] = {}
    for finding in findings:
        current = chosen.get(finding.key)
        if current is None or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[current.severity]:
            chosen[finding.key] = finding
    return chosen


def new_alert(finding: Finding, now: datetime) -> Alert:
    """The alert a finding opens at ``now``."""
    return Alert(key=finding.key, kind=finding.kind, severity=finding.severity,
                 title=finding.title, place=finding.place, started_at=finding.started_at,
                 detected_at=now, updated_at=now, evidence=dict(finding.evidence),
                 window=finding.window, plan_level=finding.plan_level)


class AlertTracker:
    """Open, update and resolve alerts from findings; keep them and their outbox in SQLite.

    ``path`` is a file (created with its folder) or ``":memory:"`` (offline runs).
    ``targets``: the outboxes each change is queued for (none: nothing is queued).
    Not thread-safe: one tracker per process, used from one thread.
    """

    def __init__(self, path: Path | str, *, targets: Collection[Target] = tuple(Target),
                 evidence_tolerance: float = 0.05) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.targets = tuple(targets)
        self.evidence_tolerance = evidence_tolerance
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AlertTracker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- alert state -------------------------------------------------------------------

    def get(self, key: str) -> Alert | None:
        row = self._db.execute("SELECT body FROM alert WHERE key = ?", (key,)).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def alerts(self, status: AlertStatus | None = None) -> list[Alert]:
        """Every alert the tracker knows (or those with ``status``), by key."""
        if status is None:
            rows = self._db.execute("SELECT body FROM alert ORDER BY key")
        else:
            rows = self._db.execute("SELECT body FROM alert WHERE status = ? ORDER BY key",
                                    (status.value,))
        return [Alert.model_validate_json(body) for (body,) in rows]

    def open_alerts(self) -> list[Alert]:
        return self.alerts(AlertStatus.OPEN)

    def apply(self, analysis: Analysis) -> list[Change]:
        """Turn one pass's findings into alert changes (see the module documentation)."""
        return self.apply_findings(analysis.findings, analysis.evaluated, analysis.now)

    def apply_findings(self, findings: Iterable[Finding],
                       evaluated: Mapping[AlertKind, Collection[str]],
                       now: datetime) -> list[Change]:
        """Open, update or resolve alerts; store them and queue the changes, atomically."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        found = _most_severe(findings)
        known = {alert.key: alert for alert in self.alerts()}
        changes: list[Change] = []
        for key in sorted(found):
            change = self._from_finding(known.get(key), found[key], now)
            if change is not None:
                changes.append(change)
        for key in sorted(known):
            alert = known[key]
            if (alert.status is AlertStatus.OPEN and key not in found
                    and subject_of(key) in evaluated.get(alert.kind, ())):
                resolved = alert.model_copy(update={
                    "status": AlertStatus.RESOLVED, "resolved_at": now, "updated_at": now})
                changes.append(Change(Action.RESOLVE, resolved))
        self._store(changes)
        return changes

    def _from_finding(self, current: Alert | None, finding: Finding,
                      now: datetime) -> Change | None:
        if current is None:
            return Change(Action.OPEN, new_alert(finding, now))
        if current.status is AlertStatus.RESOLVED:
            return Change(Action.REOPEN, new_alert(finding, now))
        escalated = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[current.severity]
        material = (escalated or finding.plan_level != current.plan_level
                    or finding.place != current.place
                    or evidence_changed(current.evidence, finding.evidence,
                                        self.evidence_tolerance))
        if not material:
            return None
        updated = current.model_copy(update={
            "severity": finding.severity if escalated else current.severity,
            "plan_level": finding.plan_level, "place": finding.place, "title": finding.title,
            "evidence": dict(finding.evidence), "window": finding.window,
            "started_at": min(current.started_at, finding.started_at), "updated_at": now})
        return Change(Action.UPDATE, updated)

    def _store(self, changes: list[Change]) -> None:
        if not changes:
            return
        with self._transaction():
            for change in changes:
                body = change.alert.model_dump_json()
                self._db.execute(
                    "INSERT INTO alert (key, status, body) VALUES (?, ?, ?) ON CONFLICT (key) "
                    "DO UPDATE SET status = excluded.status, body = excluded.body",
                    (change.alert.key, change.alert.status.value, body))
                self._db.executemany(
                    "INSERT INTO outbox (target, key, action, body) VALUES (?, ?, ?, ?)",
                    [(target.value, change.alert.key, change.action.value, body)
                     for target in self.targets])
        log.info("alerts: %d changes (%s)", len(changes),
                 ", ".join(f"{c.action.value} {c.alert.key}" for c in changes[:5])
                 + (" ..." if len(changes) > 5 else ""))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # -- outbox ------------------------------------------------------------------------

    def pending(self, target: Target, limit: int = 500) -> list[OutboxItem]:
        """The oldest ``limit`` changes not yet delivered to ``target``, in order."""
        rows = self._db.execute(
            "SELECT seq, action, body FROM outbox WHERE target = ? ORDER BY seq LIMIT ?",
            (target.value, limit))
        return [OutboxItem(seq, target, Action(action), Alert.model_validate_json(body))
                for seq, action, body in rows]

    def pending_count(self, target: Target) -> int:
        row = self._db.execute("SELECT count(*) FROM outbox WHERE target = ?",
                               (target.value,)).fetchone()
        return int(row[0])

    def mark_delivered(self, items: Iterable[OutboxItem]) -> None:
        with self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE seq = ?",
                                 [(item.seq,) for item in items])

    def dead_letter(self, item: OutboxItem, reason: str) -> None:
        """Move a change ``item.target`` refused for good out of the queue, keeping it."""
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO dead_letter (seq, target, key, action, body, reason) "
                "SELECT seq, target, key, action, body, ? FROM outbox WHERE seq = ?",
                (reason[:1000], item.seq))
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
        log.error("alert %s refused by %s for good, kept as a dead letter: %s",
                  item.alert.key, item.target.value, reason)

    def dead_letters(self) -> list[tuple[OutboxItem, str]]:
        rows = self._db.execute(
            "SELECT seq, target, action, body, reason FROM dead_letter ORDER BY seq")
        return [(OutboxItem(seq, Target(target), Action(action),
                            Alert.model_validate_json(body)), reason)
                for seq, target, action, body, reason in rows]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")
