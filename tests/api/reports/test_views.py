"""The report routes on the real app (SQLite and PostgreSQL): files, roles, bad windows."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from api.auth.models import Role
from api.crews.models import Crew
from api.tickets.models import (
    Priority,
    SlaClass,
    Ticket,
    TicketSource,
    TicketStatus,
    TicketType,
)

from .records import utc


def add_ticket(db_session: Session, *, crew: Crew | None, created: datetime, due: datetime,
               resolved: datetime | None = None,
               status: TicketStatus = TicketStatus.OPEN) -> Ticket:
    ticket = Ticket(source=TicketSource.MANUAL, type=TicketType.LEAK, title="leak",
                    priority=Priority.HIGH, required_skill="pipe", sla_class=SlaClass.ORDINARY,
                    status=status, crew_id=crew.id if crew else None, created_at=created,
                    updated_at=created, due_at=due, resolved_at=resolved)
    db_session.add(ticket)
    db_session.commit()
    return ticket


def seed(db_session: Session, make_crew: Callable[..., Crew]) -> None:
    crew = make_crew("一队 Crew 1")
    add_ticket(db_session, crew=crew, created=utc(7, 1), due=utc(7, 2), resolved=utc(7, 1, 6),
               status=TicketStatus.RESOLVED)
    add_ticket(db_session, crew=crew, created=utc(7, 3), due=utc(7, 4), resolved=utc(7, 5),
               status=TicketStatus.RESOLVED)
    add_ticket(db_session, crew=None, created=utc(8, 1), due=utc(8, 2),
               status=TicketStatus.CANCELLED)


def test_csv_by_crew_for_a_dispatcher(client: TestClient, db_session: Session,
                                      make_crew: Callable[..., Crew],
                                      dispatcher: dict[str, str]) -> None:
    seed(db_session, make_crew)
    response = client.get("/api/v1/reports/tickets.csv", params={"by": "crew"},
                          headers=dispatcher)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="tickets-by-crew.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1][:3] == ["(unassigned)", "1", "0"]
    crew_row = dict(zip(rows[0], rows[2], strict=True))
    assert crew_row["crew"] == "一队 Crew 1"
    assert (crew_row["tickets"], crew_row["sla_met"], crew_row["sla_breached"],
            crew_row["sla_met_pct"], crew_row["mean_hours_to_resolve"]) == (
        "2", "1", "1", "50.0", "27.0")


def test_window_limits_the_tickets_and_names_the_file(client: TestClient,
                                                      db_session: Session,
                                                      make_crew: Callable[..., Crew],
                                                      viewer: dict[str, str]) -> None:
    seed(db_session, make_crew)
    response = client.get("/api/v1/reports/tickets.csv",
                          params={"by": "tickets", "start": "2026-07-02T00:00:00+08:00",
                                  "end": "2026-08-01T00:00:00+08:00"}, headers=viewer)
    assert response.status_code == 200, response.text
    assert 'filename="tickets-20260702-20260801.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 2 and dict(zip(rows[0], rows[1], strict=True))["sla_outcome"] == \
        "breached"


def test_xlsx_workbook(client: TestClient, db_session: Session,
                       make_crew: Callable[..., Crew], admin: dict[str, str]) -> None:
    seed(db_session, make_crew)
    response = client.get("/api/v1/reports/tickets.xlsx", headers=admin)
    assert response.status_code == 200, response.text
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames == ["by_month", "by_crew", "by_village", "tickets"]
    assert [row[0].value for row in workbook["by_month"].iter_rows(min_row=2)] == [
        "2026-07", "2026-08"]


def test_crew_members_may_not_read_reports_and_bad_windows_are_refused(
        client: TestClient, make_user: Callable[..., dict[str, str]],
        make_crew: Callable[..., Crew], dispatcher: dict[str, str]) -> None:
    member = make_user("wu", Role.CREW_MEMBER, crew_id=make_crew("Crew 2").id)
    assert client.get("/api/v1/reports/tickets.csv", headers=member).status_code == 403
    assert client.get("/api/v1/reports/tickets.csv").status_code == 401
    naive = client.get("/api/v1/reports/tickets.csv", params={"start": "2026-07-01T00:00:00"},
                       headers=dispatcher)
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
    backwards = client.get("/api/v1/reports/tickets.xlsx",
                           params={"start": "2026-08-01T00:00:00Z",
                                   "end": "2026-07-01T00:00:00Z"}, headers=dispatcher)
    assert backwards.status_code == 422
    unknown = client.get("/api/v1/reports/tickets.csv", params={"by": "day"},
                         headers=dispatcher)
    assert unknown.status_code == 422
