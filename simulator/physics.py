"""Demand and supply shapes: pure functions of time, vectorised where it matters.

Diurnal demand has morning and evening peaks and its minimum between 02:00 and 04:00 (when
the minimum night flow is read); weekends draw a little more; summer (peak mid-July) about a
quarter more than the annual mean, winter a quarter less.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

# Hourly demand factors, 00:00..23:00, normalised below to a mean of 1.
_DIURNAL = np.array([0.30, 0.22, 0.16, 0.15, 0.22, 0.55, 1.30, 1.80, 1.60, 1.20, 1.00, 1.10,
                     1.40, 1.20, 0.90, 0.80, 0.90, 1.20, 1.70, 1.80, 1.50, 1.10, 0.70, 0.45])
_DIURNAL = _DIURNAL / _DIURNAL.mean()


def diurnal_factor(moment: datetime) -> float:
    """Demand relative to the daily mean at this local time (interpolated between hours)."""
    hour = moment.hour + moment.minute / 60
    low = int(hour) % 24
    frac = hour - int(hour)
    return float(_DIURNAL[low] * (1 - frac) + _DIURNAL[(low + 1) % 24] * frac)


def weekly_factor(moment: datetime) -> float:
    return 1.08 if moment.weekday() >= 5 else 0.97


def seasonal_factor(moment: datetime) -> float:
    """1 + 0.25 cos(...) peaking on day 196 (mid-July)."""
    day = moment.timetuple().tm_yday
    return 1.0 + 0.25 * math.cos(2 * math.pi * (day - 196) / 365.25)


def summer_weight(moment: datetime) -> float:
    """0 in midwinter, 1 in mid-July: how far the aquifer's seasonal decline has gone."""
    return (seasonal_factor(moment) - 0.75) / 0.5


def night_pressure_factor(moment: datetime) -> float:
    """Leakage grows with pressure, and pressure is highest at night when demand is low."""
    return 1.1 if 0 <= moment.hour < 5 else 0.97
