"""HTTP routes for reports: CSV per grouping, XLSX with every table (mount with no prefix)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.auth.models import Role
from api.auth.security import Principal
from api.deps import ApiSettingsDep, SessionDep, require_role
from api.errors import Invalid
from api.reports import files, source, tables

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

ReportReader = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.DISPATCHER,
                                                         Role.VIEWER))]
Table = Literal["month", "crew", "village", "type", "priority", "tickets"]
Start = Annotated[datetime | None, Query(description="tickets created from (with zone)")]
End = Annotated[datetime | None, Query(description="tickets created before (with zone)")]


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime | None,
                                                                     datetime | None]:
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise Invalid("start and end need a time zone, e.g. 2026-07-01T00:00:00+08:00")
    if start is not None and end is not None and end <= start:
        raise Invalid("end must be after start")
    return start, end


def _filename(stem: str, start: datetime | None, end: datetime | None, suffix: str) -> str:
    span = "-".join(value.strftime("%Y%m%d") for value in (start, end) if value is not None)
    return f"{stem}{'-' + span if span else ''}.{suffix}"


@router.get("/tickets.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def tickets_csv(db_session: SessionDep, settings: ApiSettingsDep, _principal: ReportReader,
                by: Table = "month",
                start: Start = None, end: End = None) -> Response:
    """Ticket and SLA figures per month, crew, village, type or priority; or every ticket."""
    start, end = _window(start, end)
    tz = timezone(timedelta(hours=settings.utc_offset_hours))
    records = source.ticket_records(db_session=db_session, start=start, end=end)
    tickets = tables.ticket_frame(records, as_of=datetime.now(UTC), tz=tz)
    frame = tickets if by == "tickets" else tables.sla_summary(tickets, by)
    name = _filename(f"tickets-by-{by}" if by != "tickets" else "tickets", start, end, "csv")
    return Response(files.to_csv(frame), media_type=files.CSV_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/tickets.xlsx", response_class=Response,
            responses={200: {"content": {files.XLSX_MEDIA_TYPE: {}}}})
def tickets_xlsx(db_session: SessionDep, settings: ApiSettingsDep, _principal: ReportReader,
                 start: Start = None, end: End = None) -> Response:
    """A workbook: sheets by_month, by_crew, by_village and tickets."""
    start, end = _window(start, end)
    tz = timezone(timedelta(hours=settings.utc_offset_hours))
    records = source.ticket_records(db_session=db_session, start=start, end=end)
    sheets = tables.report_tables(records, as_of=datetime.now(UTC), tz=tz)
    name = _filename("ticket-report", start, end, "xlsx")
    return Response(files.to_xlsx(sheets), media_type=files.XLSX_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
