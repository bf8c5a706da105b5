"""Demand and supply shapes: pure functions of local time.

Diurnal demand has morning and evening peaks and its minimum between 02:00 and 04:00 local
time (when the minimum night flow is read); weekends draw a little more; summer (peak
mid-July) about a quarter more than the annual mean, winter a quarter less. Callers pass
*local* times (``County.utc_offset_hours``).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

# Hourly demand factors at 00:00..23:00, normalised below to a mean of 1.
_DIURNAL = np.array([0.30, 0.22, 0.16, 0.15, 0.22, 0.55, 1.30, 1.80, 1.60, 1.20, 1.00, 1.10,
                     1.40, 1.20, 0.90, 0.80, 0.90, 1.20, 1.70, 1.80, 1.50, 1.10, 0.70, 0.45])
_DIURNAL = _DIURNAL / _DIURNAL.mean()
SUMMER_PEAK_DAY = 196  # mid-July
SEASONAL_AMPLITUDE = 0.25


def diurnal_factor(local: datetime) -> float:
    """Demand relative to the daily mean at this local time (interpolated between hours)."""
    hour = local.hour + local.minute / 60 + local.second / 3600
    low = int(hour) % 24
    frac = hour - int(hour)
    return float(_DIURNAL[low] * (1 - frac) + _DIURNAL[(low + 1) % 24] * frac)


def weekly_factor(local: datetime) -> float:
    return 1.08 if local.weekday() >= 5 else 0.97


def seasonal_factor(local: datetime) -> float:
    """1 + 0.25 cos(...) peaking mid-July: 1.25 in summer, 0.75 in midwinter."""
    day = local.timetuple().tm_yday + local.hour / 24
    return 1.0 + SEASONAL_AMPLITUDE * math.cos(2 * math.pi * (day - SUMMER_PEAK_DAY) / 365.25)


def summer_weight(local: datetime) -> float:
    """0 in midwinter, 1 in mid-July: how far the aquifer's seasonal decline has gone."""
    return (seasonal_factor(local) - (1 - SEASONAL_AMPLITUDE)) / (2 * SEASONAL_AMPLITUDE)


def night_pressure_factor(local: datetime) -> float:
    """Leakage grows with pressure, and pressure is highest at night when demand is low."""
    return 1.1 if 0 <= local.hour < 5 else 0.97


def relax(value: np.ndarray, target: np.ndarray, hours: float, tau_h: float) -> np.ndarray:
    """First-order approach of ``value`` to ``target`` over ``hours`` (time constant tau_h)."""
    return target + (value - target) * math.exp(-hours / tau_h)
