"""Pure report tables: ticket records -> pandas frames (no I/O, no database).

SLA outcome of a ticket as of the report time: ``met`` (resolved by its deadline),
``breached`` (resolved late, or unresolved past its deadline), ``pending`` (unresolved,
still in time) or ``cancelled``. The SLA rate is met / (met + breached), in percent; pending
and cancelled tickets are not counted in it. Months are calendar months in the county's
time zone (``tz``), by the ticket's creation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Final, Literal

import numpy as np
import pandas as pd

from api.reports.records import TicketRecord

Grouping = Literal["month", "crew", "village", "type", "priority"]
GROUPINGS: Final[tuple[Grouping, ...]] = ("month", "crew", "village", "type", "priority")
DEFAULT_TZ: Final = "Asia/Shanghai"
UNASSIGNED: Final = "(unassigned)"
UNKNOWN_VILLAGE: Final = "(none)"

DETAIL_COLUMNS: Final = ["id", "month", "type", "priority", "village", "crew", "created_at",
                         "sla_deadline", "resolved_at", "verified_at", "hours_to_resolve",
                         "hours_to_verify", "sla_outcome", "reopen_count"]
SUMMARY_COLUMNS: Final = ["tickets", "resolved", "verified", "unresolved", "cancelled",
                          "sla_met", "sla_breached", "sla_pending", "sla_met_pct",
                          "mean_hours_to_resolve", "median_hours_to_resolve", "reopened"]


def _local(moment: datetime | None, tz: str | tzinfo) -> pd.Timestamp | None:
    if moment is None:
        return None
    return pd.Timestamp(moment).tz_convert(tz).tz_localize(None)


def _outcome(record: TicketRecord, as_of: datetime) -> str:
    if record.cancelled:
        return "cancelled"
    if record.resolved_at is not None:
        return "met" if record.resolved_at <= record.sla_deadline else "breached"
    return "breached" if as_of > record.sla_deadline else "pending"


def _hours(start: datetime, end: datetime | None) -> float:
    return (end - start).total_seconds() / 3600 if end is not None else np.nan


def ticket_frame(records: Sequence[TicketRecord], *, as_of: datetime,
                 tz: str | tzinfo = DEFAULT_TZ) -> pd.DataFrame:
    """One row per ticket (``DETAIL_COLUMNS``): local naive times in ``tz``, hours to
    resolve and to verify (from creation), SLA outcome as of ``as_of``."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    rows = [{
        "id": record.id,
        "month": pd.Timestamp(record.created_at).tz_convert(tz).strftime("%Y-%m"),
        "type": record.type,
        "priority": record.priority,
        "village": record.village or UNKNOWN_VILLAGE,
        "crew": record.crew or UNASSIGNED,
        "created_at": _local(record.created_at, tz),
        "sla_deadline": _local(record.sla_deadline, tz),
        "resolved_at": _local(record.resolved_at, tz),
        "verified_at": _local(record.verified_at, tz),
        "hours_to_resolve": _hours(record.created_at, record.resolved_at),
        "hours_to_verify": _hours(record.created_at, record.verified_at),
        "sla_outcome": _outcome(record, as_of),
        "reopen_count": record.reopen_count,
    } for record in sorted(records, key=lambda r: (r.created_at, r.id))]
    frame = pd.DataFrame(rows, columns=DETAIL_COLUMNS)
    for column in ("created_at", "sla_deadline", "resolved_at", "verified_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame.astype({"hours_to_resolve": float, "hours_to_verify": float})


def sla_summary(tickets: pd.DataFrame, by: Grouping) -> pd.DataFrame:
    """Counts and SLA performance per ``by`` group (``SUMMARY_COLUMNS``), groups sorted.

    ``tickets`` is a :func:`ticket_frame`. Hours are from creation to resolution over the
    resolved, non-cancelled tickets; ``sla_met_pct`` is NaN where nothing was decided.
    """
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUPINGS)}")
    outcome = tickets["sla_outcome"]
    live = outcome != "cancelled"
    parts = pd.DataFrame({
        by: tickets[by],
        "tickets": 1,
        "resolved": (tickets["resolved_at"].notna() & live).astype(int),
        "verified": (tickets["verified_at"].notna() & live).astype(int),
        "unresolved": (tickets["resolved_at"].isna() & live).astype(int),
        "cancelled": (~live).astype(int),
        "sla_met": (outcome == "met").astype(int),
        "sla_breached": (outcome == "breached").astype(int),
        "sla_pending": (outcome == "pending").astype(int),
        "hours": tickets["hours_to_resolve"].where(live),
        "reopened": (tickets["reopen_count"] > 0).astype(int),
    })
    grouped = parts.groupby(by, sort=True)
    summary = grouped[["tickets", "resolved", "verified", "unresolved", "cancelled", "sla_met",
                       "sla_breached", "sla_pending", "reopened"]].sum()
    decided = summary["sla_met"] + summary["sla_breached"]
    summary["sla_met_pct"] = (100 * summary["sla_met"] / decided.where(decided > 0)).round(1)
    summary["mean_hours_to_resolve"] = grouped["hours"].mean().round(2)
    summary["median_hours_to_resolve"] = grouped["hours"].median().round(2)
    return summary[SUMMARY_COLUMNS].reset_index()


def report_tables(records: Sequence[TicketRecord], *, as_of: datetime,
                  tz: str | tzinfo = DEFAULT_TZ) -> dict[str, pd.DataFrame]:
    """The full report: summaries by month, crew and village, and every ticket."""
    tickets = ticket_frame(records, as_of=as_of, tz=tz)
    return {"by_month": sla_summary(tickets, "month"),
            "by_crew": sla_summary(tickets, "crew"),
            "by_village": sla_summary(tickets, "village"),
            "tickets": tickets}
