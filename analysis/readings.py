"""The long readings format the pipeline takes, its checks and the reshaping detectors share.

Long format (the offline CSV and what ``analysis.source`` produces), one row per value:

========  =========================  ===================================================
column    dtype                      meaning
========  =========================  ===================================================
time      datetime64[ns, UTC]        when the device took the reading
device    str                        device id (meter address, pump, analyser, ...)
kind      str                        measurement: meter, pump, dma_inflow, tank, quality
field     str                        a field of ``common.schema.FIELDS[kind]``
value     float                      booleans 0/1; meter valve 0 open, 1 closed, 2 fault
========  =========================  ===================================================
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

COLUMNS = ("time", "device", "kind", "field", "value")
VALVE_CODES = {"open": 0.0, "closed": 1.0, "fault": 2.0}


def require_aware(moment: datetime, name: str = "now") -> pd.Timestamp:
    """``moment`` as a UTC timestamp; raise ValueError if it has no timezone."""
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return pd.Timestamp(moment).tz_convert("UTC")


def clean(readings: pd.DataFrame, now: datetime, *, lookback: timedelta,
          max_skew: timedelta) -> pd.DataFrame:
    """Checked, de-duplicated readings in ``(now - lookback, now + max_skew]``, time-sorted.

    Drops rows with NaN or infinite values, rows stamped later than ``now + max_skew`` (a
    device clock running ahead) and duplicate (time, device, kind, field) rows (keeps the
    last: a replay overwrites, as in InfluxDB).

    Raises
    ------
    TypeError
        ``readings`` is not a DataFrame.
    ValueError
        A column is missing or ``time`` is not a timezone-aware datetime column.
    """
    if not isinstance(readings, pd.DataFrame):
        raise TypeError(f"readings must be a pandas DataFrame, not {type(readings).__name__}")
    missing = [c for c in COLUMNS if c not in readings.columns]
    if missing:
        raise ValueError(f"readings lack columns {missing}; need {list(COLUMNS)}")
    times = readings["time"]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError("readings.time must be timezone-aware datetimes (UTC)")
    end = require_aware(now)
    frame = pd.DataFrame({
        "time": times.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"),
        "device": readings["device"].astype(str),
        "kind": readings["kind"].astype(str),
        "field": readings["field"].astype(str),
        "value": pd.to_numeric(readings["value"], errors="coerce").astype(float),
    })
    keep = (np.isfinite(frame["value"].to_numpy()) & (frame["time"] > end - lookback)
            & (frame["time"] <= end + max_skew))
    frame = frame[keep]
    frame = frame.drop_duplicates(["time", "device", "kind", "field"], keep="last")
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def series(readings: pd.DataFrame, kind: str, field: str) -> pd.DataFrame:
    """The rows of one measurement field: columns time, device, value (time-sorted)."""
    rows = readings[(readings["kind"] == kind) & (readings["field"] == field)]
    return rows[["time", "device", "value"]].reset_index(drop=True)


def wide(readings: pd.DataFrame, kind: str, field: str) -> pd.DataFrame:
    """One field as a frame: index = reading time (UTC), columns = device ids."""
    rows = series(readings, kind, field)
    if rows.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    table = rows.pivot_table(index="time", columns="device", values="value", aggfunc="last")
    table.columns = table.columns.astype(str)
    table.columns.name = None
    return table.sort_index()


def hour_grid(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Whole UTC hours from the hour at or after ``start`` up to the one at or before ``end``."""
    return pd.date_range(start.ceil("h"), end.floor("h"), freq="h", tz="UTC")


def local(times: pd.DatetimeIndex | pd.Series, utc_offset_hours: float) -> pd.DatetimeIndex:
    """Naive local wall-clock times (China has one offset and no DST)."""
    index = pd.DatetimeIndex(times)
    return (index.tz_convert("UTC").tz_localize(None)
            + pd.Timedelta(hours=utc_offset_hours))
