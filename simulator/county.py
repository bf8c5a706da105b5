"""The county: townships, villages, schemes (wells, tank), DMAs, households, analysers.

Built deterministically from a seed at any size, from one village to a full county
(``/work/shared/domain.md``: 12 townships, ~200 villages, ~60,000 household meters, ~250
wells, one DMA per village with a bulk inflow meter, a few dozen analysers). Exported as
``register.json``: the ground-truth asset register the API imports and detection is scored
against.

Ids: villages ``v001``, gateways ``gw-v001``, DMAs ``dma-v001`` with branch lines
``dma-v001-b1``, inflow meters ``inflow-v001``, wells (and their pump drives)
``pump-v001-1``, tanks ``tank-v001``, analysers ``aq-v001-outlet`` / ``aq-v001-tap``,
households ``v001-h0001`` whose meters carry a 14-digit CJ/T 188 address.
"""

from __future__ import annotations

import numpy as np

from common.register import (
    Analyser,
    Branch,
    County,
    Dma,
    Gateway,
    Household,
    Tank,
    Township,
    Village,
    Well,
)

#: litres per person per day before diurnal, weekly and seasonal shape (rural north China);
#: household factors spread it over about 40-80 L/person/day.
BASE_LPCD = 55.0
#: CJ/T 188 addresses of the simulated meters start with this vendor/area prefix.
METER_PREFIX = "7833"
ALL_PARAMETERS = ["turbidity_ntu", "free_chlorine_mgl", "ph", "conductivity_uscm",
                  "temperature_c"]
TAP_PARAMETERS = ["turbidity_ntu", "free_chlorine_mgl"]


def build_county(
    seed: int, villages: int, households_per_village: int | None = None, *,
    tariff_yuan_m3: float = 3.0, monitored_tariff_yuan_m3: float = 2.0,
    monitored_share: float = 0.1, utc_offset_hours: float = 8.0,
) -> County:
    """A county of ``villages`` villages; ``households_per_village`` None draws ~300 each.

    Deterministic for a seed. Monitored (at-risk) households, about ``monitored_share`` of
    them, pay a subsidised tariff.
    """
    if villages < 1:
        raise ValueError("a county needs at least one village")
    if households_per_village is not None and households_per_village < 1:
        raise ValueError("a village needs at least one household")
    rng = np.random.default_rng(seed)
    n_townships = max(1, min(12, round(villages / 16.5)))
    townships = [Township(id=f"t{t + 1:02d}", name=f"Township {t + 1}")
                 for t in range(n_townships)]
    parts: dict[str, list] = {k: [] for k in
                              ("villages", "wells", "tanks", "dmas", "households",
                               "analysers", "gateways")}
    places = _Places(seed, n_townships)
    meter_serial = 0
    for v in range(villages):
        vid = f"v{v + 1:03d}"
        n_hh = households_per_village or int(np.clip(rng.normal(300, 80), 60, 520))
        persons = np.clip(rng.poisson(2.0, n_hh) + 1, 1, 7)
        monitored = rng.random(n_hh) < monitored_share
        parts["villages"].append(Village(
            id=vid, name=f"Village {v + 1}", township=townships[v % n_townships].id,
            population=int(persons.sum()), households=n_hh,
            monitored_households=int(monitored.sum()), gateway=f"gw-{vid}",
            **places.village(v % n_townships),
        ))
        mean_demand_m3h = float(persons.sum()) * BASE_LPCD / 1000 / 24
        parts["wells"].extend(_wells(rng, vid, mean_demand_m3h))
        # Storage for most of a day's mean demand.
        storage = mean_demand_m3h * 24 * float(rng.uniform(0.6, 1.0))
        parts["tanks"].append(Tank(id=f"tank-{vid}", village=vid,
                                   capacity_m3=round(max(10.0, storage), 1),
                                   height_m=round(float(rng.uniform(3.0, 4.5)), 2)))
        dma = _dma(rng, vid, n_hh, mean_demand_m3h)
        parts["dmas"].append(dma)
        branch_of = rng.integers(0, len(dma.branches), n_hh)
        for h in range(n_hh):
            meter_serial += 1
            parts["households"].append(Household(
                id=f"{vid}-h{h + 1:04d}", village=vid, dma=dma.id,
                branch=dma.branches[branch_of[h]].id, persons=int(persons[h]),
                monitored=bool(monitored[h]), meter=f"{METER_PREFIX}{meter_serial:010d}",
                initial_balance_yuan=round(float(rng.uniform(20, 200)), 2),
                tariff_yuan_m3=monitored_tariff_yuan_m3 if monitored[h] else tariff_yuan_m3,
            ))
        parts["analysers"].extend(_analysers(v, vid))
        parts["gateways"].append(Gateway(id=f"gw-{vid}", village=vid))
    return County(seed=seed, utc_offset_hours=utc_offset_hours, tariff_yuan_m3=tariff_yuan_m3,
                  seat_latitude=SEAT[0], seat_longitude=SEAT[1], townships=townships, **parts)


#: the county seat, in the loess hills of northern Shanxi
SEAT = (39.05, 112.45)
_KM_PER_DEGREE_LAT = 111.0


class _Places:
    """Village positions: townships on a ring 8-25 km from the seat, villages within ~6 km of
    their township's centre. Its own random stream, so the county's other draws (and every
    simulated reading) do not move when positions are added or changed."""

    def __init__(self, seed: int, townships: int) -> None:
        self._rng = np.random.default_rng([seed, 0x91ACE])
        angles = np.linspace(0, 2 * np.pi, townships, endpoint=False)
        radii = self._rng.uniform(8, 25, townships) if townships > 1 else np.zeros(1)
        self._centres = [(float(r * np.sin(a)), float(r * np.cos(a)))
                         for r, a in zip(radii, angles, strict=True)]

    def village(self, township: int) -> dict[str, float]:
        east, north = self._centres[township]
        east += float(self._rng.normal(0, 3))
        north += float(self._rng.normal(0, 3))
        km_per_degree_lon = _KM_PER_DEGREE_LAT * float(np.cos(np.radians(SEAT[0])))
        return {"latitude": round(SEAT[0] + north / _KM_PER_DEGREE_LAT, 5),
                "longitude": round(SEAT[1] + east / km_per_degree_lon, 5)}


def _dma(rng: np.random.Generator, vid: str, n_hh: int, mean_demand_m3h: float) -> Dma:
    dma_id = f"dma-{vid}"
    n_branches = int(rng.integers(3, 8))
    branches = [Branch(id=f"{dma_id}-b{b + 1}", dma=dma_id,
                       length_km=round(float(rng.uniform(0.3, 2.0)), 2))
                for b in range(n_branches)]
    return Dma(
        id=dma_id, village=vid, inflow_meter=f"inflow-{vid}",
        mains_km=round(float(rng.uniform(1.0, 5.0)), 2), branches=branches,
        connections=n_hh, avg_pressure_m=round(float(rng.uniform(18, 35)), 1),
        # 5-12% of supply: around the CJJ 92-2016 grades, so some DMAs are above them.
        background_leak_m3h=round(mean_demand_m3h * float(rng.uniform(0.05, 0.12)), 3),
    )


def _wells(rng: np.random.Generator, vid: str, mean_demand_m3h: float) -> list[Well]:
    count = 2 if rng.random() < 0.25 else 1
    wells = []
    for w in range(count):
        allowed = float(rng.uniform(16, 20))
        # Sized so the scheme meets about 2.2x mean demand: enough, until a summer surge.
        rated = mean_demand_m3h * 24 * 2.2 / allowed / count
        static = float(rng.uniform(25, 60))
        wells.append(Well(
            id=f"pump-{vid}-{w + 1}", village=vid, rated_flow_m3h=round(max(rated, 2.0), 2),
            allowed_hours_per_day=round(allowed, 1), static_level_m=round(static, 1),
            intake_depth_m=round(static + float(rng.uniform(15, 30)), 1),
            drawdown_m_per_m3h=round(float(rng.uniform(0.3, 0.6)), 3),
            summer_decline_m=round(float(rng.uniform(1.0, 4.0)), 2),
            delivery_head_m=round(float(rng.uniform(15, 40)), 1),
        ))
    return wells


def _analysers(v: int, vid: str) -> list[Analyser]:
    """Every sixth scheme has an outlet analyser, every twelfth village a tap analyser too."""
    found = []
    if v % 6 == 0:
        found.append(Analyser(id=f"aq-{vid}-outlet", village=vid, site="outlet",
                              parameters=list(ALL_PARAMETERS)))
    if v % 12 == 0:
        found.append(Analyser(id=f"aq-{vid}-tap", village=vid, site="tap",
                              parameters=list(TAP_PARAMETERS)))
    return found
