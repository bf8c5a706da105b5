"""The figures the boards draw as thresholds, with the defaults from domain.md.

They differ between counties (``python -m dashboards generate --standards county.yaml``
overrides any of them); the committed boards use the defaults.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field


class Standards(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # T/CHES 18-2018 water quantity, litres per person per day
    supply_min_lpcd: float = Field(default=20.0,
                                   description="where water is scarce (northern Shanxi)")
    supply_ample_lpcd: float = Field(default=35.0,
                                     description="where rain >= 800 mm and water is ample")
    guarantee_rate_min_pct: float = Field(default=90.0, description="supply guarantee rate, %")
    # CJJ 92-2016 leakage-rate grades, % of supplied water
    nrw_grade_1_pct: float = 10.0
    nrw_grade_2_pct: float = 12.0
    # GB 5749-2022 limits watched online
    turbidity_max_ntu: float = 1.0
    turbidity_small_scheme_max_ntu: float = Field(
        default=3.0, description="small schemes limited by source or treatment")
    chlorine_outlet_min_mgl: float = 0.3
    chlorine_outlet_max_mgl: float = 2.0
    chlorine_tap_min_mgl: float = 0.05
    ph_min: float = 6.5
    ph_max: float = 8.5
    # operational warning levels (bureau practice, not a national standard)
    well_margin_warn_m: float = Field(default=5.0, description="water above the pump intake, m")
    well_margin_critical_m: float = 2.0
    days_to_shortfall_warn: float = 14.0
    days_to_shortfall_critical: float = 7.0
    pump_hours_per_day_warn: float = Field(default=20.0, description="run hours in a local day")
    meter_silent_after_h: int = Field(default=3, description="meters report hourly", ge=1)
    # repair commitments, hours (minor, ordinary, major)
    sla_minor_h: float = 12.0
    sla_ordinary_h: float = 24.0
    sla_major_h: float = 48.0
    sla_due_soon_h: float = Field(default=4.0, description="an active ticket this close to its "
                                  "deadline shows as due soon")
    utc_offset_hours: int = Field(default=8,
                                  description="local day boundaries (China Standard Time)")
    current_state_lookback: str = Field(
        default="30d", description="how far back 'current state' panels look for an alert's last "
        "change, an InfluxQL duration")

    @classmethod
    def load(cls, path: Path | None) -> Standards:
        """The defaults, or the defaults overridden by a YAML mapping of field -> value."""
        if path is None:
            return cls()
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})
