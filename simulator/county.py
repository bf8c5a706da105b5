"""The county: townships, villages, schemes (wells, tank), DMAs, households, analysers.

Built deterministically from a seed at any size, from one village to a full county
(``../shared/domain.md``: ~200 villages, ~60,000 household meters, ~250 wells, one DMA per
village with a bulk inflow meter, a few dozen analysers). Exported as ``register.json``: the
ground-truth asset register the API imports and detection is scored against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

#: litres per person per day before diurnal, weekly and seasonal shape (rural north China)
BASE_LPCD = 55.0


class Township(BaseModel):
    id: str
    name: str


class Village(BaseModel):
    id: str
    name: str
    township: str
    population: int
    households: int
    monitored_households: int


class Well(BaseModel):
    id: str
    village: str
    rated_flow_m3h: float
    allowed_hours_per_day: float
    static_level_m: float = Field(description="depth to water at rest, m below ground")
    intake_depth_m: float = Field(description="pump intake, m below ground")
    drawdown_m_per_m3h: float
    summer_decline_m: float = Field(description="seasonal drop of the rest level in summer")


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
    inflow_meter: str
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


class Analyser(BaseModel):
    id: str
    village: str
    site: str = Field(description="'outlet' (scheme outlet) or 'tap'")
    parameters: list[str]


class Gateway(BaseModel):
    id: str
    village: str


class County(BaseModel):
    seed: int
    tariff_yuan_m3: float = 3.0
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


def build_county(
    seed: int, villages: int, households_per_village: int | None = None
) -> County:
    """A county of ``villages`` villages; ``households_per_village`` None draws ~300 each."""
    if villages < 1:
        raise ValueError("a county needs at least one village")
    rng = np.random.default_rng(seed)
    n_townships = max(1, min(12, round(villages / 16.5)))
    townships = [Township(id=f"t{t + 1:02d}", name=f"Township {t + 1}")
                 for t in range(n_townships)]
    county: dict[str, list] = {k: [] for k in
                               ("villages", "wells", "tanks", "dmas", "households",
                                "analysers", "gateways")}
    meter_serial = 0
    for v in range(villages):
        vid = f"v{v + 1:03d}"
        n_hh = households_per_village or int(np.clip(rng.normal(300, 80), 60, 520))
        persons = np.clip(rng.poisson(2.0, n_hh) + 1, 1, 7)
        monitored = rng.random(n_hh) < 0.1
        county["villages"].append(Village(
            id=vid, name=f"Village {v + 1}", township=townships[v % n_townships].id,
            population=int(persons.sum()), households=n_hh,
            monitored_households=int(monitored.sum()),
        ))
        mean_demand_m3h = float(persons.sum()) * BASE_LPCD / 1000 / 24
        county["wells"].extend(_wells(rng, vid, mean_demand_m3h))
        county["tanks"].append(Tank(id=f"tank-{vid}", village=vid,
                                    capacity_m3=round(max(30.0, mean_demand_m3h * 24), 1),
                                    height_m=round(float(rng.uniform(3.0, 4.5)), 2)))
        dma_id = f"dma-{vid}"
        n_branches = int(rng.integers(3, 8))
        branches = [Branch(id=f"{dma_id}-b{b + 1}", dma=dma_id,
                           length_km=round(float(rng.uniform(0.3, 2.0)), 2))
                    for b in range(n_branches)]
        county["dmas"].append(Dma(
            id=dma_id, village=vid, inflow_meter=f"inflow-{vid}",
            mains_km=round(float(rng.uniform(1.0, 5.0)), 2), branches=branches,
            connections=n_hh, avg_pressure_m=round(float(rng.uniform(18, 35)), 1),
            background_leak_m3h=round(mean_demand_m3h * float(rng.uniform(0.05, 0.12)), 3),
        ))
        branch_of = rng.integers(0, n_branches, n_hh)
        for h in range(n_hh):
            meter_serial += 1
            county["households"].append(Household(
                id=f"{vid}-h{h + 1:04d}", village=vid, dma=dma_id,
                branch=branches[branch_of[h]].id, persons=int(persons[h]),
                monitored=bool(monitored[h]), meter=f"7833{meter_serial:010d}",
                initial_balance_yuan=round(float(rng.uniform(20, 200)), 2),
            ))
        county["analysers"].extend(_analysers(v, vid))
        county["gateways"].append(Gateway(id=f"gw-{vid}", village=vid))
    return County(seed=seed, townships=townships, **county)


def _wells(rng: np.random.Generator, vid: str, mean_demand_m3h: float) -> list[Well]:
    count = 2 if rng.random() < 0.25 else 1
    wells = []
    for w in range(count):
        allowed = float(rng.uniform(16, 20))
        # Sized so the scheme meets about 2.2x mean demand: enough, until a summer surge.
        rated = mean_demand_m3h * 24 * 2.2 / allowed / count
        static = float(rng.uniform(25, 60))
        wells.append(Well(
            id=f"pump-{vid}-{w + 1}", village=vid, rated_flow_m3h=round(max(rated, 3.0), 2),
            allowed_hours_per_day=round(allowed, 1), static_level_m=round(static, 1),
            intake_depth_m=round(static + float(rng.uniform(15, 30)), 1),
            drawdown_m_per_m3h=round(float(rng.uniform(0.3, 0.6)), 3),
            summer_decline_m=round(float(rng.uniform(1.0, 4.0)), 2),
        ))
    return wells


def _analysers(v: int, vid: str) -> list[Analyser]:
    found = []
    if v % 6 == 0:
        found.append(Analyser(id=f"aq-{vid}-outlet", village=vid, site="outlet",
                              parameters=["turbidity_ntu", "free_chlorine_mgl", "ph",
                                          "conductivity_uscm", "temperature_c"]))
    if v % 12 == 3:
        found.append(Analyser(id=f"aq-{vid}-tap", village=vid, site="tap",
                              parameters=["turbidity_ntu", "free_chlorine_mgl"]))
    return found
