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
    last: a replay overwrites, as in InfluxDB). ``device``, ``kind`` and ``field`` come out
    categorical with their categories in sorted order (:func:`categorical`), so detectors
    compare and group small integer codes, not strings, and a sort by device is the sort
    by device id.

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
    stamps = pd.DatetimeIndex(times).tz_convert("UTC").as_unit("ns").asi8
    values = pd.to_numeric(readings["value"], errors="coerce").to_numpy(dtype=float)
    keep = (np.isfinite(values) & (stamps > (end - lookback).value)
            & (stamps <= (end + max_skew).value))
    labels = {name: categorical(readings[name]) for name in ("device", "kind", "field")}
    # Time order (stable: equal times keep their input order), then the last of each
    # duplicate is the last of its run in that order. The worker's frame is time-sorted
    # and inside the window already: then no row moves and nothing is copied for it.
    rows = None if keep.all() else np.flatnonzero(keep)
    kept = stamps if rows is None else stamps[rows]
    if not (kept[1:] >= kept[:-1]).all():
        order = np.argsort(kept, kind="stable")
        rows = order if rows is None else rows[order]
        kept = stamps[rows]
    codes = {name: (column.codes if rows is None else column.codes[rows])
             for name, column in labels.items()}
    repeated = _duplicated(kept, codes)
    if repeated.any():
        rows = np.flatnonzero(~repeated) if rows is None else rows[~repeated]

    def pick(array: np.ndarray) -> np.ndarray:
        return array if rows is None else array[rows]

    return pd.DataFrame({
        "time": pd.DatetimeIndex(pick(stamps).view("datetime64[ns]")).tz_localize("UTC"),
        **{name: pd.Categorical.from_codes(pick(column.codes), dtype=column.dtype,
                                           validate=False)
           for name, column in labels.items()},
        "value": pick(values),
    })


def categorical(column: pd.Series) -> pd.Categorical:
    """A label column as a categorical of strings with sorted categories.

    A categorical column keeps its codes (recoded once if its categories are unsorted):
    converting a county's history to strings and back costs seconds.
    """
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return pd.Categorical(column.astype(str))
    codes = column.cat.codes.to_numpy()
    names = column.cat.categories
    if names.dtype != object and not pd.api.types.is_string_dtype(names.dtype) \
            or not names.is_unique or (codes < 0).any():
        return pd.Categorical(column.astype(str))
    if names.is_monotonic_increasing:
        return pd.Categorical.from_codes(codes, dtype=column.dtype, validate=False)
    order = np.argsort(names.to_numpy(dtype=object), kind="stable")
    position = np.empty(len(order), dtype=codes.dtype)
    position[order] = np.arange(len(order), dtype=codes.dtype)
    return pd.Categorical.from_codes(position[codes], categories=names.take(order),
                                     validate=False)


def _duplicated(stamps: np.ndarray, codes: dict[str, np.ndarray]) -> np.ndarray:
    """True for every time-sorted row that a later row of the same time and labels repeats."""
    if not len(stamps):
        return np.zeros(0, dtype=bool)
    # One int64 per row: rank of its time, then each label's code (+1: a missing label,
    # code -1, is a label of its own); hashing one column is far cheaper than four.
    starts = np.flatnonzero(stamps[1:] != stamps[:-1]) + 1
    lengths = np.diff(starts, prepend=0, append=len(stamps))
    bound = len(lengths)
    widths = [int(column.max()) + 2 for column in codes.values()]
    for width in widths:
        bound *= width
    if bound >= 2**62:
        frame = pd.DataFrame({"time": stamps, **codes})
        return frame.duplicated(keep="last").to_numpy()
    labels = np.zeros(len(stamps), dtype=np.int64)
    for width, column in zip(widths, codes.values(), strict=True):
        labels *= width
        labels += column
        labels += 1
    labels += np.repeat(np.arange(len(lengths), dtype=np.int64) * int(np.prod(widths)),
                        lengths)
    # Duplicates are rare and the keys come nearly sorted (rows of one time in device
    # order), where a stable sort (timsort) is quick; hash only when there are some.
    ordered = np.sort(labels, kind="stable")
    if not (ordered[1:] == ordered[:-1]).any():
        return np.zeros(len(labels), dtype=bool)
    return pd.Series(labels).duplicated(keep="last").to_numpy()


def series(readings: pd.DataFrame, kind: str, field: str) -> pd.DataFrame:
    """The rows of one measurement field: columns time, device, value (time-sorted)."""
    rows = readings[((readings["kind"] == kind) & (readings["field"] == field)).to_numpy()]
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
