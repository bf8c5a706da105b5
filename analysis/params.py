"""Detection parameters, with defaults from ``/work/shared/domain.md``.

Every threshold the detectors use lives here, never as a literal in their code. Counties and
vendors differ: load a JSON or YAML file of overrides with :func:`load_params` (the worker
reads ``RURALWATER_ANALYSIS__PARAMS_FILE``). Shares are fractions (0.05 = 5%), flows m3/h,
volumes m3, times in hours or days as the names say; local times follow
``County.utc_offset_hours``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.alerts import PlanLevel


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeakParams(_Section):
    """Water balance, minimum night flow, bursts and customer-side leaks."""

    night_start_hour: int = Field(default=2, ge=0, le=23, description="local, inclusive")
    night_end_hour: int = Field(default=4, ge=1, le=24, description="local, inclusive")
    baseline_days: int = Field(default=14, ge=1, description="days of history behind a baseline")
    min_baseline_days: int = Field(default=2, ge=1)
    baseline_quantile: float = Field(
        default=0.25, gt=0.0, lt=1.0,
        description="quantile of the same hours on earlier days taken as 'normal'; below the "
        "median so a leak stays flagged for longer than half the baseline")
    sustained_window_h: int = Field(default=24, ge=6, description="balance window for leaks")
    recent_window_h: int = Field(default=6, ge=1,
                                 description="a leak must still show over this window")
    leak_share: float = Field(
        default=0.025, gt=0.0,
        description="extra real losses over sustained_window_h, share of mean inflow, to flag "
        "(a 5% leak crosses it ~13 h after it starts; the 24 h balance of clean 30-household "
        "DMAs stays below 1.3% in 99% of hours)")
    night_flow_share: float = Field(
        default=0.06, gt=0.0,
        description="minimum night flow above its baseline by this share of mean inflow "
        "(and the water balance over recent_window_h up by leak_share: a customer-side "
        "leak or more night use raises the night flow but not the losses)")
    min_night_history: int = Field(
        default=3, ge=2, description="earlier nights needed before a night-flow verdict (the "
        "noise of a DMA's night flow is measured from them)")
    noise_sigmas: float = Field(default=4.0, gt=0.0,
                                description="and above this many robust sigmas of the baseline")
    meter_resolution_m3: float = Field(
        default=0.01, ge=0.0, description="last digit of a household register (CJ/T 188: "
        "2 decimals); its rounding sets the least noise of a DMA's metered consumption")
    burst_window_h: int = Field(default=3, ge=1)
    burst_share: float = Field(default=0.15, gt=0.0,
                               description="a step of this share of mean inflow is a burst")
    demand_surge_guard: float = Field(
        default=0.5, ge=0.0,
        description="no leak verdict while consumption is this share above its baseline")
    min_meter_coverage: float = Field(default=0.8, gt=0.0, le=1.0,
                                      description="share of a DMA's meters needed per hour")
    apparent_loss_share: float = Field(
        default=0.02, ge=0.0, lt=1.0,
        description="meter under-registration, share of consumption (CJJ 92 apparent losses)")
    nrw_grade_share: float = Field(default=0.12, gt=0.0,
                                   description="CJJ 92-2016 leakage grade: flag NRW above it")
    nrw_window_days: int = Field(default=7, ge=1)
    max_household_flow_m3h: float = Field(
        default=3.0, gt=0.0, description="faster registered flow is a glitch, not consumption")
    rollover_moduli_m3: list[float] = Field(
        default=[10_000.0, 100_000.0, 1_000_000.0],
        description="register sizes a cumulative meter wraps at")
    rollover_near_share: float = Field(default=0.9, gt=0.0, lt=1.0,
                                       description="a drop from above this share may wrap")
    reset_max_m3: float = Field(default=1.0, ge=0.0,
                                description="a drop to below this is a reset or new meter")
    reverse_max_m3: float = Field(default=0.5, ge=0.0,
                                  description="a smaller drop is water running backwards")
    customer_night_hours: tuple[int, int] = Field(
        default=(1, 5), description="local [start, end) hours a household meter should idle")
    customer_idle_m3: float = Field(
        default=0.005, ge=0.0, description="an hour registering no more than this is idle")
    customer_min_flow_m3h: float = Field(
        default=0.008, ge=0.0, description="and the mean flow of those hours must reach this")
    customer_night_day_ratio: float = Field(
        default=0.5, ge=0.0, description="and this share of the household's mean flow over "
        "the last 24 h: ordinary night use is about a fifth of it, a leak's continuous flow "
        "brings it near one")
    customer_peer_ratio_multiple: float = Field(
        default=2.5, ge=0.0, description="and this multiple of the same ratio for the rest "
        "of the DMA (a whole village drawing more at night is no leak)")
    customer_quiet_hours: int = Field(
        default=4, ge=1, description="consecutive quiet hours (across nights, unread hours "
        "skipped) that registered water: one whole night at the default hours")
    private_pipe_km_per_connection: float = Field(
        default=0.0, ge=0.0, description="for the IWA UARL; 0 where the meter is at the "
        "property line")


class PlanTrigger(_Section):
    """When a seasonal-shortage emergency plan level applies (any condition suffices)."""

    level: PlanLevel
    max_days_to_shortfall: float | None = Field(
        default=None, description="the source will not last longer than this")
    min_unmet_share: float | None = Field(
        default=None, description="share of demand that cannot be supplied today")
    min_people: int = Field(default=0, ge=0, description="and at least this many people")


def _default_triggers() -> list[PlanTrigger]:
    return [
        PlanTrigger(level="IV", max_days_to_shortfall=14.0, min_unmet_share=0.02),
        PlanTrigger(level="III", max_days_to_shortfall=7.0, min_unmet_share=0.10),
        PlanTrigger(level="II", max_days_to_shortfall=3.0, min_unmet_share=0.20),
        PlanTrigger(level="I", max_days_to_shortfall=1.0, min_unmet_share=0.40,
                    min_people=1000),
    ]


class ShortageParams(_Section):
    """Source capacity against a demand forecast; per-capita supply; plan levels."""

    min_lpcd: float = Field(default=20.0, gt=0.0, description="T/CHES 18-2018: 20 L/person/"
                            "day where water is scarce (35 where ample)")
    guarantee_target_pct: float = Field(default=90.0, ge=0.0, le=100.0)
    horizon_days: int = Field(default=60, ge=1, description="how far ahead to project")
    projection_step_h: float = Field(default=6.0, gt=0.0, le=24.0,
                                     description="time step of the tank projection")
    demand_window_days: int = Field(default=7, ge=1,
                                    description="trailing 24 h windows behind the demand trend")
    demand_trend_days: float = Field(
        default=7.0, ge=0.0, description="project the demand trend this far, then hold it")
    max_demand_trend_share: float = Field(
        default=0.03, ge=0.0, description="demand trend clipped to this share per day")
    trend_window_days: float = Field(default=3.0, gt=0.0,
                                     description="well and tank trends over this many days")
    min_trend_span_days: float = Field(
        default=1.0, gt=0.0, description="a well trend needs data spanning this long")
    steady_pump_min: float = Field(
        default=90.0, ge=0.0, description="well levels count toward the rest level once the "
        "pump has kept its state this long (the level settles in ~30 min)")
    seasonal_amplitude: float = Field(default=0.25, ge=0.0, lt=1.0,
                                      description="summer +25%, winter -25%")
    seasonal_peak_day: int = Field(default=196, ge=1, le=366, description="day of year")
    weekend_factor: float = Field(default=1.11, gt=0.0,
                                  description="weekend demand relative to a weekday")
    intake_clearance_m: float = Field(
        default=2.0, ge=0.0, description="the pump needs this much water above its intake")
    dry_tank_share: float = Field(default=0.02, ge=0.0, lt=1.0,
                                  description="a tank below this share of capacity is dry")
    triggers: list[PlanTrigger] = Field(default_factory=_default_triggers)
    hysteresis_step_h: float = Field(
        default=6.0, gt=0.0, description="the plan level is re-evaluated at this spacing ...")
    hysteresis_steps: int = Field(default=8, ge=0,
                                  description="... over this many earlier moments")
    hold_margin: float = Field(
        default=0.25, ge=0.0, lt=1.0,
        description="a level holds until its triggers miss by this share (days x 1.25, "
        "unmet share x 0.75): no flapping at a threshold")


class Limit(_Section):
    minimum: float | None = None
    maximum: float | None = None


def _site_limits() -> dict[str, dict[str, Limit]]:
    """GB 5749-2022 limits watched online, per site (scheme outlet or household tap)."""
    return {
        "outlet": {"turbidity_ntu": Limit(maximum=1.0),
                   "free_chlorine_mgl": Limit(minimum=0.3, maximum=2.0),
                   "ph": Limit(minimum=6.5, maximum=8.5)},
        "tap": {"turbidity_ntu": Limit(maximum=1.0),
                "free_chlorine_mgl": Limit(minimum=0.05, maximum=2.0),
                "ph": Limit(minimum=6.5, maximum=8.5)},
    }


def _valid_ranges() -> dict[str, Limit]:
    """What the analysers can physically report; outside it the sensor is at fault."""
    return {"turbidity_ntu": Limit(minimum=0.0, maximum=100.0),
            "free_chlorine_mgl": Limit(minimum=0.0, maximum=10.0),
            "ph": Limit(minimum=2.0, maximum=12.0),
            "conductivity_uscm": Limit(minimum=10.0, maximum=5000.0),
            "temperature_c": Limit(minimum=-5.0, maximum=45.0)}


def _drift_limits() -> dict[str, float]:
    return {"ph": 0.5, "conductivity_uscm": 150.0, "turbidity_ntu": 0.5}


def _min_sigmas() -> dict[str, float]:
    """Below these spreads a parameter's noise is the analyser's resolution, not the water."""
    return {"turbidity_ntu": 0.02, "free_chlorine_mgl": 0.01, "ph": 0.02,
            "conductivity_uscm": 2.0, "temperature_c": 0.05}


class QualityParams(_Section):
    """GB 5749 limits, CANARY-style events below them, and sensor faults."""

    limits: dict[str, dict[str, Limit]] = Field(default_factory=_site_limits,
                                                description="site -> parameter -> limit")
    analyser_limits: dict[str, dict[str, Limit]] = Field(
        default_factory=dict, description="analyser id -> parameter -> limit (overrides)")
    source_limited_schemes: list[str] = Field(
        default_factory=list, description="villages whose small scheme is limited by source "
        "or treatment: GB 5749 allows them the higher turbidity limit below")
    source_limited_turbidity_ntu: float = Field(default=3.0, gt=0.0)
    breach_hold_readings: int = Field(
        default=3, ge=1, description="a breach stays open until this many readings comply")
    valid_ranges: dict[str, Limit] = Field(default_factory=_valid_ranges)
    flatline_readings: int = Field(default=12, ge=3,
                                   description="this many identical readings: a stuck sensor")
    drift_window_days: float = Field(default=3.0, gt=0.0)
    drift_limits: dict[str, float] = Field(
        default_factory=_drift_limits,
        description="parameter -> steady change over the window that is sensor drift")
    drift_min_r2: float = Field(default=0.8, gt=0.0, le=1.0)
    drift_min_span_days: float = Field(
        default=2.0, gt=0.0, description="a drift verdict needs data spanning this long")
    baseline_readings: int = Field(default=72, ge=10,
                                   description="moving baseline behind each prediction")
    outlier_sigmas: float = Field(default=3.5, gt=0.0)
    min_sigma: dict[str, float] = Field(
        default_factory=_min_sigmas, description="parameter -> floor of the robust sigma")
    outlier_probability: float = Field(
        default=0.01, gt=0.0, lt=1.0, description="chance of an outlier in normal water")
    event_window_readings: int = Field(default=12, ge=2)
    event_probability: float = Field(
        default=0.999, gt=0.0, lt=1.0,
        description="binomial event discriminator: declare an event above this")
    event_parameters: list[str] = Field(
        default=["turbidity_ntu", "free_chlorine_mgl", "ph", "conductivity_uscm"])


class DeviceParams(_Section):
    """Silent devices, meter status, pump drive health."""

    silent_intervals: float = Field(default=3.5, gt=1.0,
                                    description="missed reporting intervals before 'silent'")
    report_interval_min: dict[str, float] = Field(
        default={"meter": 60.0, "pump": 5.0, "dma_inflow": 15.0, "tank": 5.0, "quality": 10.0},
        description="used when a device's own interval cannot be inferred")
    gateway_silent_share: float = Field(
        default=0.9, gt=0.0, le=1.0,
        description="this share of a village's devices silent: the gateway, not the devices")
    dry_run_flow_share: float = Field(default=0.5, gt=0.0, lt=1.0,
                                      description="flow below this share of normal ...")
    dry_run_current_share: float = Field(default=0.75, gt=0.0, lt=1.0,
                                         description="... and current below this share")
    overcurrent_share: float = Field(default=1.25, gt=1.0,
                                     description="current above this share of normal")
    pump_fault_readings: int = Field(default=2, ge=1,
                                     description="consecutive readings before a pump alert")
    cycling_window_h: float = Field(default=2.0, gt=0.0)
    max_starts_per_hour: float = Field(default=3.0, gt=0.0)
    reverse_window_h: float = Field(default=24.0, gt=0.0)
    reverse_min_steps: int = Field(
        default=2, ge=1, description="backward steps of a cumulative volume within the window")
    monitored_critical_after_h: float = Field(
        default=2.0, ge=0.0,
        description="a monitored household's closed valve turns critical after this long")


class AnalysisParams(_Section):
    """All detection parameters; ``AnalysisParams()`` is the domain.md default set."""

    lookback_days: float = Field(default=15.0, gt=0.0,
                                 description="history the pipeline reads before 'now'")
    max_clock_skew_min: float = Field(
        default=10.0, ge=0.0, description="readings stamped further after 'now' are dropped")
    leaks: LeakParams = Field(default_factory=LeakParams)
    shortage: ShortageParams = Field(default_factory=ShortageParams)
    quality: QualityParams = Field(default_factory=QualityParams)
    devices: DeviceParams = Field(default_factory=DeviceParams)

    @model_validator(mode="after")
    def _windows_fit(self) -> AnalysisParams:
        leaks = self.leaks
        if leaks.night_end_hour <= leaks.night_start_hour:
            raise ValueError("leaks.night_end_hour must be after night_start_hour")
        start, end = leaks.customer_night_hours
        if not 0 <= start < end <= 24:
            raise ValueError("leaks.customer_night_hours must be 0 <= start < end <= 24")
        return self


def load_params(path: Path | None) -> AnalysisParams:
    """Defaults, overridden by a JSON or YAML file when ``path`` is given."""
    if path is None:
        return AnalysisParams()
    text = path.read_text()
    try:
        raw: Any = (yaml.safe_load(text) if path.suffix in (".yaml", ".yml")
                    else json.loads(text))
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a parameter file: {exc}") from exc
    return AnalysisParams.model_validate(raw or {})

