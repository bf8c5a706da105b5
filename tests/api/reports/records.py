"""Seven synthetic tickets whose report figures are worked out by hand in the tests.

Times are UTC; the county is UTC+8, so ticket 1 (30 June 17:00 UTC) is a July ticket and
ticket 5 (31 July 16:30 UTC) an August one. The report is made on 10 August 00:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from api.reports.records import TicketRecord

AS_OF = datetime(2026, 8, 10, tzinfo=UTC)


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


RECORDS = [
    # met in 12 h, verified, July (local 1 July 01:00)
    TicketRecord(id=1, type="leak", priority="high", village="v001", crew="Crew A",
                 created_at=utc(6, 30, 17), sla_deadline=utc(7, 1, 17),
                 resolved_at=utc(7, 1, 5), verified_at=utc(7, 3, 5)),
    # resolved after 18 h against a 12 h commitment: breached; reopened once
    TicketRecord(id=2, type="valve", priority="normal", village="v001", crew="Crew A",
                 created_at=utc(7, 10), sla_deadline=utc(7, 10, 12),
                 resolved_at=utc(7, 10, 18), reopen_count=1),
    # met in 24 h of 48
    TicketRecord(id=3, type="pump", priority="urgent", village="v002", crew="Crew B",
                 created_at=utc(7, 20), sla_deadline=utc(7, 22), resolved_at=utc(7, 21)),
    # unassigned, unresolved, past its deadline on 10 August: breached
    TicketRecord(id=4, type="leak", priority="normal", village="v002", crew=None,
                 created_at=utc(7, 31, 15), sla_deadline=utc(8, 1, 15)),
    # August locally, unresolved, deadline 20 August: pending
    TicketRecord(id=5, type="complaint", priority="low", village="v001", crew="Crew B",
                 created_at=utc(7, 31, 16, 30), sla_deadline=utc(8, 20)),
    # cancelled: counted as a ticket, never in the SLA rate
    TicketRecord(id=6, type="meter", priority="low", village="v003", crew="Crew A",
                 created_at=utc(8, 2), sla_deadline=utc(8, 3), cancelled=True),
    # met in 6 h, verified
    TicketRecord(id=7, type="leak", priority="high", village="v003", crew="Crew B",
                 created_at=utc(8, 5), sla_deadline=utc(8, 6), resolved_at=utc(8, 5, 6),
                 verified_at=utc(8, 8)),
]
