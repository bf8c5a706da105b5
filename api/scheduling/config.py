"""Scheduling settings: defaults here, overridden by ``ApiSettings`` fields of the same name.

Until ``common.settings.ApiSettings`` carries these fields (RURALWATER_API__PLANNING_*,
RURALWATER_API__REPLAN_*), :func:`scheduling_config` falls back to the defaults below.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.tickets.models import TicketType
from common.settings import ApiSettings

#: Estimated work on site per ticket type, minutes (what the planner books per stop).
DEFAULT_SERVICE_MINUTES: dict[TicketType, float] = {
    TicketType.LEAK: 120.0,
    TicketType.VALVE: 30.0,
    TicketType.OFFLINE_DEVICE: 45.0,
    TicketType.METER: 45.0,
    TicketType.PUMP: 120.0,
    TicketType.WATER_QUALITY: 60.0,
    TicketType.SUPPLY: 90.0,
    TicketType.COMPLAINT: 60.0,
    TicketType.OTHER: 60.0,
}


class SchedulingConfig(BaseModel):
    """How the ticket service plans crews' routes."""

    time_limit_s: float = Field(default=5.0, gt=0, description="OR-Tools search per plan, s")
    solution_limit: int | None = Field(
        default=None, ge=1, description="stop after this many improving solutions (tests)")
    utc_offset_hours: float = Field(default=8.0, description="county local time (shifts)")
    horizon_days: int = Field(default=2, ge=1, le=7,
                              description="shifts planned: today's and the next days'")
    position_max_age_h: float = Field(
        default=12.0, gt=0, description="an older reported position is ignored (home base)")
    eta_tolerance_minutes: float = Field(
        default=10.0, ge=0, description="a re-plan moving an ETA less than this keeps it")
    min_remaining_minutes: float = Field(
        default=15.0, gt=0, description="work left on a started job, at least, minutes")
    service_minutes: dict[TicketType, float] = Field(
        default_factory=lambda: dict(DEFAULT_SERVICE_MINUTES))
    replan_loop: bool = Field(
        default=False, description="re-plan in this process when the inputs change")
    replan_poll_s: float = Field(default=15.0, gt=0,
                                 description="how often the loop looks for changes, s")
    replan_debounce_s: float = Field(
        default=30.0, ge=0, description="quiet time after the last change before re-planning")
    replan_max_age_s: float = Field(
        default=1800.0, gt=0, description="re-plan at least this often while work is open")


def scheduling_config(settings: ApiSettings) -> SchedulingConfig:
    """The scheduling settings: ``ApiSettings`` fields where they exist, else the defaults."""
    defaults = SchedulingConfig()
    return SchedulingConfig(
        time_limit_s=getattr(settings, "planning_time_limit_s", defaults.time_limit_s),
        utc_offset_hours=settings.utc_offset_hours,
        horizon_days=getattr(settings, "planning_horizon_days", defaults.horizon_days),
        replan_loop=getattr(settings, "replan_loop", defaults.replan_loop),
        replan_poll_s=getattr(settings, "replan_poll_s", defaults.replan_poll_s),
        replan_debounce_s=getattr(settings, "replan_debounce_s", defaults.replan_debounce_s),
        replan_max_age_s=getattr(settings, "replan_max_age_s", defaults.replan_max_age_s),
    )
