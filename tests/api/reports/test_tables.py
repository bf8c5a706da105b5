"""Report tables on synthetic tickets, every figure checked by hand (see records.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from api.reports.records import TicketRecord
from api.reports.tables import SUMMARY_COLUMNS, report_tables, sla_summary, ticket_frame

from .records import AS_OF, RECORDS, utc

NAN = float("nan")


def rows(frame: pd.DataFrame) -> list[list[object]]:
    """Rows with NaN as None, so lists compare."""
    return [[None if isinstance(v, float) and math.isnan(v) else v for v in row]
            for row in frame.itertuples(index=False, name=None)]


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    return ticket_frame(RECORDS, as_of=AS_OF, tz="Asia/Shanghai")


def test_ticket_rows_carry_local_month_hours_and_sla_outcome(tickets: pd.DataFrame) -> None:
    assert list(tickets["id"]) == [1, 2, 3, 4, 5, 6, 7]
    assert list(tickets["month"]) == ["2026-07"] * 4 + ["2026-08"] * 3
    assert list(tickets["sla_outcome"]) == ["met", "breached", "met", "breached", "pending",
                                            "cancelled", "met"]
    assert rows(tickets[["hours_to_resolve", "hours_to_verify"]]) == [
        [12.0, 60.0], [18.0, None], [24.0, None], [None, None], [None, None], [None, None],
        [6.0, 72.0]]
    assert tickets.loc[0, "created_at"] == pd.Timestamp("2026-07-01 01:00")
    assert list(tickets["crew"])[3] == "(unassigned)"


def test_summary_by_month(tickets: pd.DataFrame) -> None:
    summary = sla_summary(tickets, "month")
    assert list(summary.columns) == ["month", *SUMMARY_COLUMNS]
    # tickets resolved verified unresolved cancelled met breached pending pct mean median reop
    assert rows(summary) == [
        ["2026-07", 4, 3, 1, 1, 0, 2, 2, 0, 50.0, 18.0, 18.0, 1],
        ["2026-08", 3, 1, 1, 1, 1, 1, 0, 1, 100.0, 6.0, 6.0, 0],
    ]


def test_summary_by_crew(tickets: pd.DataFrame) -> None:
    assert rows(sla_summary(tickets, "crew")) == [
        ["(unassigned)", 1, 0, 0, 1, 0, 0, 1, 0, 0.0, None, None, 0],
        ["Crew A", 3, 2, 1, 0, 1, 1, 1, 0, 50.0, 15.0, 15.0, 1],
        ["Crew B", 3, 2, 1, 1, 0, 2, 0, 1, 100.0, 15.0, 15.0, 0],
    ]


def test_summary_by_village(tickets: pd.DataFrame) -> None:
    assert rows(sla_summary(tickets, "village")) == [
        ["v001", 3, 2, 1, 1, 0, 1, 1, 1, 50.0, 15.0, 15.0, 1],
        ["v002", 2, 1, 0, 1, 0, 1, 1, 0, 50.0, 24.0, 24.0, 0],
        ["v003", 2, 1, 1, 0, 1, 1, 0, 0, 100.0, 6.0, 6.0, 0],
    ]


def test_a_group_with_nothing_decided_has_no_sla_rate() -> None:
    pending = [TicketRecord(id=1, type="leak", priority="low", created_at=utc(8, 9),
                            sla_deadline=utc(8, 11))]
    summary = sla_summary(ticket_frame(pending, as_of=AS_OF), "priority")
    assert rows(summary) == [["low", 1, 0, 0, 1, 0, 0, 0, 1, None, None, None, 0]]


def test_the_same_tickets_in_utc_move_ticket_5_back_into_july() -> None:
    summary = sla_summary(ticket_frame(RECORDS, as_of=AS_OF, tz="UTC"), "month")
    assert rows(summary)[0][:2] == ["2026-06", 1] and rows(summary)[1][:2] == ["2026-07", 4]


def test_no_tickets_give_empty_tables() -> None:
    sheets = report_tables([], as_of=AS_OF)
    assert list(sheets) == ["by_month", "by_crew", "by_village", "tickets"]
    assert all(frame.empty for frame in sheets.values())


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="cannot group by 'day'"):
        sla_summary(ticket_frame(RECORDS, as_of=AS_OF), "day")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        ticket_frame(RECORDS, as_of=AS_OF.replace(tzinfo=None))
    with pytest.raises(ValidationError, match="resolved before it was created"):
        TicketRecord(id=9, type="leak", priority="low", created_at=utc(8, 2),
                     sla_deadline=utc(8, 3), resolved_at=utc(8, 1))
    with pytest.raises(ValidationError, match="verified without or before"):
        TicketRecord(id=9, type="leak", priority="low", created_at=utc(8, 2),
                     sla_deadline=utc(8, 3), verified_at=utc(8, 4))
