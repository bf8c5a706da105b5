"""Water quality: each parameter per analyser site with the GB 5749-2022 limits drawn on it.

Sites are analyser ids (``aq-v001-outlet``, ``aq-v001-tap``, common/register.py): the scheme
outlet and household taps have different chlorine limits, so chlorine gets a panel for each.
Each interval shows its worst value for the limit: highest turbidity, lowest chlorine.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from dashboards import panels as p
from dashboards.boards.base import IN_VILLAGES, Board, PanelBuilder, finish, new_board
from dashboards.queries import influxql
from dashboards.standards import Standards
from dashboards.variables import site, township, village

UID = "rw-water-quality"
IN_SITES = '"device" =~ /^$site$/'


def _parameter(title: str, description: str, unit: str, steps: Sequence[p.Step],
               aggregate: str, field: str, site_filter: str = "",
               span: int = 12) -> PanelBuilder:
    extra = f" AND {site_filter}" if site_filter else ""
    query = influxql(
        f'SELECT {aggregate}("{field}") FROM "quality" WHERE {IN_VILLAGES} AND {IN_SITES}'
        f'{extra} AND $timeFilter GROUP BY time($__interval), "device" fill(none)',
        ("time", aggregate), tags=("device",), alias="$tag_device")
    return p.time_series(title, description, unit, steps, [query], span=span)


def build(standards: Standards) -> Board:
    board = new_board(
        UID, "Water quality",
        "Online analysers at scheme outlets and household taps against GB 5749-2022.",
        time_from="now-2d", variables=[township(), village(), site()])
    board = board.with_row(dashboard_builders.Row("GB 5749 limits"))
    board = board.with_panel(_parameter(
        "Turbidity",
        f"NTU, highest per interval; limit {standards.turbidity_max_ntu:g} NTU, "
        f"{standards.turbidity_small_scheme_max_ntu:g} NTU for small schemes limited by source "
        "or treatment.", p.NTU,
        ((None, "green"), (standards.turbidity_max_ntu, "orange"),
         (standards.turbidity_small_scheme_max_ntu, "red")), "max", "turbidity_ntu"))
    board = board.with_panel(_parameter(
        "pH", f"Mean per interval; GB 5749 range {standards.ph_min:g}-{standards.ph_max:g}.",
        p.PH, ((None, "red"), (standards.ph_min, "green"), (standards.ph_max, "red")),
        "mean", "ph"))
    board = board.with_panel(_parameter(
        "Free chlorine at the scheme outlet",
        f"mg/L, lowest per interval; {standards.chlorine_outlet_min_mgl:g}-"
        f"{standards.chlorine_outlet_max_mgl:g} mg/L after at least 30 min contact.",
        p.MG_PER_L, ((None, "red"), (standards.chlorine_outlet_min_mgl, "green"),
                     (standards.chlorine_outlet_max_mgl, "red")),
        "min", "free_chlorine_mgl", '"device" =~ /-outlet$/'))
    board = board.with_panel(_parameter(
        "Free chlorine at the tap",
        f"mg/L, lowest per interval; at least {standards.chlorine_tap_min_mgl:g} mg/L at the "
        "tap.", p.MG_PER_L, ((None, "red"), (standards.chlorine_tap_min_mgl, "green")),
        "min", "free_chlorine_mgl", '"device" =~ /-tap$/'))
    board = board.with_row(dashboard_builders.Row("Other parameters"))
    board = board.with_panel(_parameter(
        "Conductivity", "µS/cm, mean per interval; GB 5749 sets no online limit (a sudden "
        "change means the source changed).", p.US_PER_CM, p.NEUTRAL, "mean",
        "conductivity_uscm"))
    board = board.with_panel(_parameter(
        "Water temperature", "°C, mean per interval; no limit (chlorine decays faster when "
        "warm).", p.CELSIUS, p.NEUTRAL, "mean", "temperature_c"))
    board = board.with_panel(p.data_table(
        "Latest reading per analyser",
        "Turbidity (NTU), free chlorine (mg/L), pH, conductivity (µS/cm), temperature (°C).",
        p.NTU, ((None, "green"), (standards.turbidity_max_ntu, "orange"),
                (standards.turbidity_small_scheme_max_ntu, "red")),
        [influxql('SELECT last("turbidity_ntu") AS "turbidity_ntu", last("free_chlorine_mgl")'
                  ' AS "free_chlorine_mgl", last("ph") AS "ph", last("conductivity_uscm") AS '
                  '"conductivity_uscm", last("temperature_c") AS "temperature_c" FROM "quality" '
                  f'WHERE {IN_VILLAGES} AND {IN_SITES} AND $timeFilter GROUP BY "device"',
                  ("time", "turbidity_ntu", "free_chlorine_mgl", "ph", "conductivity_uscm",
                   "temperature_c"), tags=("device",), table=True)],
        span=24, height=7,
        columns={"free_chlorine_mgl": (p.MG_PER_L, (
                     (None, "red"), (standards.chlorine_tap_min_mgl, "green"),
                     (standards.chlorine_outlet_max_mgl, "red"))),
                 "ph": (p.PH, ((None, "red"), (standards.ph_min, "green"),
                               (standards.ph_max, "red"))),
                 "conductivity_uscm": (p.US_PER_CM, p.NEUTRAL),
                 "temperature_c": (p.CELSIUS, p.NEUTRAL)}))
    return finish(board, UID, ("Turbidity", "Free chlorine at the scheme outlet",
                               "Free chlorine at the tap", "pH"))
