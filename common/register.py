"""The asset register: what a county's water schemes consist of, as one JSON document.

The contract between whoever knows the assets and whoever needs them: the simulator writes
it (``register.json``, its ground truth), the analysis reads it to know which meters feed
which DMA and what each well can give, and the API imports it into its asset tables. The
format is this pydantic model (``County.model_json_schema()``); docs/register.md describes it.

Ids: villages ``v001``, gateways ``gw-v001``, DMAs ``dma-v001`` with branch lines
``dma-v001-b1``, inflow meters ``inflow-v001``, wells (and their pump drives)
``pump-v001-1``, tanks ``tank-v001``, analysers ``aq-v001-outlet`` / ``aq-v001-tap``,
households ``v001-h0001`` whose meters carry a 14-digit CJ/T 188 address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class Township(BaseModel):
    id: str
    name: str


class Village(BaseModel):
    id: str
    name: str
    township: str
    population: int
    households: int
    monitored_households: int = Field(description="households on the social monitoring list")
    gateway: str
    latitude: float = Field(description="WGS84, the village centre (crews' routes start here)")
    longitude: float = Field(description="WGS84")


class Well(BaseModel):
    """A drilled well with a submersible pump on a variable-frequency drive (Modbus)."""

    id: str = Field(description="well id, also the pump drive's device id")
    village: str
    rated_flow_m3h: float
    allowed_hours_per_day: float = Field(description="abstraction licence / pump duty limit")
    static_level_m: float = Field(description="depth to water at rest in winter, m below ground")
    intake_depth_m: float = Field(description="pump intake, m below ground")
    drawdown_m_per_m3h: float = Field(description="extra depth to water per m3/h pumped")
    summer_decline_m: float = Field(description="seasonal drop of the rest level by mid-July")
    delivery_head_m: float = Field(description="lift from the wellhead to the tank inlet, m")


class Tank(BaseModel):
    id: str
    village: str
    capacity_m3: float
    height_m: float


class Branch(BaseModel):
    id: str
    dma: str
    length_km: float


class Dma(BaseModel):
    id: str
    village: str
    inflow_meter: str = Field(description="device id of the bulk meter at the DMA inlet")
    mains_km: float
    branches: list[Branch]
    connections: int
    avg_pressure_m: float
    background_leak_m3h: float = Field(description="ground truth: unreported real losses")


class Household(BaseModel):
    id: str
    village: str
    dma: str
    branch: str
    persons: int
    monitored: bool = Field(description="on the social monitoring list: never cut off")
    meter: str = Field(description="14-digit CJ/T 188 address")
    initial_balance_yuan: float
    tariff_yuan_m3: float


class Analyser(BaseModel):
    id: str
    village: str
    site: Literal["outlet", "tap"] = Field(description="scheme outlet or a household tap")
    parameters: list[str]


class Gateway(BaseModel):
    id: str
    village: str


class County(BaseModel):
    seed: int
    utc_offset_hours: float = Field(
        default=8.0, description="local time = UTC + this (China Standard Time, no DST); "
        "demand follows local time, so the night minimum is 02:00-04:00 local")
    tariff_yuan_m3: float = 3.0
    seat_latitude: float = Field(description="WGS84 of the county seat: the bureau and depot")
    seat_longitude: float
    townships: list[Township]
    villages: list[Village]
    wells: list[Well]
    tanks: list[Tank]
    dmas: list[Dma]
    households: list[Household]
    analysers: list[Analyser]
    gateways: list[Gateway]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def read(cls, path: Path) -> County:
        return cls.model_validate_json(path.read_text())
