"""CSV and XLSX files read back: the same figures, a usable layout."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from api.reports.files import to_csv, to_xlsx
from api.reports.records import TicketRecord
from api.reports.tables import report_tables, sla_summary, ticket_frame

from .records import AS_OF, RECORDS, utc


def test_csv_has_a_bom_a_header_and_the_hand_checked_rows() -> None:
    data = to_csv(sla_summary(ticket_frame(RECORDS, as_of=AS_OF), "crew"))
    assert data.startswith(b"\xef\xbb\xbf")  # Excel then reads UTF-8 (Chinese names)
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0][:3] == ["crew", "tickets", "resolved"]
    assert table[1] == ["(unassigned)", "1", "0", "0", "1", "0", "0", "1", "0", "0.0", "", "",
                        "0"]
    assert table[2] == ["Crew A", "3", "2", "1", "0", "1", "1", "1", "0", "50.0", "15.0",
                        "15.0", "1"]


def test_csv_writes_local_times_and_chinese_names() -> None:
    record = TicketRecord(id=1, type="leak", priority="high", village="东关村",
                          crew="一队", created_at=utc(7, 1), sla_deadline=utc(7, 2))
    data = to_csv(ticket_frame([record], as_of=AS_OF))
    header, row = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    values = dict(zip(header, row, strict=True))
    assert (values["village"], values["crew"]) == ("东关村", "一队")
    assert values["created_at"] == "2026-07-01 08:00:00"
    assert values["resolved_at"] == ""


def test_xlsx_has_one_sheet_per_table_with_a_bold_frozen_header() -> None:
    workbook = load_workbook(io.BytesIO(to_xlsx(report_tables(RECORDS, as_of=AS_OF))))
    assert workbook.sheetnames == ["by_month", "by_crew", "by_village", "tickets"]
    by_month = workbook["by_month"]
    assert by_month.freeze_panes == "A2"
    assert by_month["A1"].value == "month" and by_month["A1"].font.bold
    assert [cell.value for cell in by_month[2]] == ["2026-07", 4, 3, 1, 1, 0, 2, 2, 0, 50,
                                                    18, 18, 1]
    tickets = workbook["tickets"]
    assert tickets.max_row == 1 + len(RECORDS)
    header = [cell.value for cell in tickets[1]]
    created = tickets.cell(row=2, column=header.index("created_at") + 1).value
    assert created.isoformat() == "2026-07-01T01:00:00"
    assert tickets.column_dimensions["A"].width >= 4
