"""Report frames -> file bytes: CSV (UTF-8 with BOM so Excel reads Chinese names) and XLSX."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Final

import pandas as pd
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_MAX_WIDTH: Final = 60


def to_csv(frame: pd.DataFrame) -> bytes:
    """The frame as CSV: header row, no index, ISO times, empty cells for missing values."""
    text = frame.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
    return text.encode("utf-8-sig")


def to_xlsx(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """One worksheet per frame (name -> frame): bold frozen header, columns sized to fit."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name[:31], index=False)
            sheet = writer.sheets[name[:31]]
            sheet.freeze_panes = "A2"
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            for index, column in enumerate(frame.columns, start=1):
                values = [str(column), *(str(value) for value in frame[column].head(500))]
                width = min(_MAX_WIDTH, max(len(value) for value in values) + 2)
                sheet.column_dimensions[get_column_letter(index)].width = width
    return buffer.getvalue()
