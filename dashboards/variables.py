"""Template variables: township -> village -> DMA, each from InfluxQL ``SHOW TAG VALUES``.

Telemetry carries no township tag; the analysis's ``supply_outlook`` points carry both
village and township. So the village list reads ``supply_outlook`` and ``dma_inflow`` together:
with township "All" (its all-value ``.*`` also matches the missing tag) every village that
reports appears even before the analysis runs; a chosen township narrows the list to the
villages the analysis has placed in it. Village and DMA "All" expand to their option lists,
so a township choice carries through to every panel.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard as sdk

from dashboards.queries import INFLUX

TOWNSHIP_QUERY = 'SHOW TAG VALUES FROM "supply_outlook" WITH KEY = "township"'
VILLAGE_QUERY = ('SHOW TAG VALUES FROM "supply_outlook", "dma_inflow" WITH KEY = "village" '
                 'WHERE "township" =~ /^$township$/')
DMA_QUERY = 'SHOW TAG VALUES FROM "dma_inflow" WITH KEY = "dma" WHERE "village" =~ /^$village$/'
SITE_QUERY = ('SHOW TAG VALUES FROM "quality" WITH KEY = "device" '
              'WHERE "village" =~ /^$village$/')


def _tag_variable(name: str, label: str, query: str, description: str,
                  all_value: str | None = None) -> dashboard_builders.QueryVariable:
    variable = (dashboard_builders.QueryVariable(name).label(label).description(description)
                .datasource(INFLUX).query(query).multi(True).include_all(True)
                .refresh(sdk.VariableRefresh.ON_DASHBOARD_LOAD)
                .sort(sdk.VariableSort.NATURAL_ASC)
                .current(sdk.VariableOption(selected=True, text=["All"], value=["$__all"])))
    if all_value is not None:
        variable = variable.all_value(all_value)
    return variable


def township() -> dashboard_builders.QueryVariable:
    return _tag_variable("township", "Township", TOWNSHIP_QUERY,
                         "townships the analysis has placed villages in", all_value=".*")


def village() -> dashboard_builders.QueryVariable:
    return _tag_variable("village", "Village", VILLAGE_QUERY, "villages of the township")


def dma() -> dashboard_builders.QueryVariable:
    return _tag_variable("dma", "DMA", DMA_QUERY, "district metered areas of the villages")


def site() -> dashboard_builders.QueryVariable:
    return _tag_variable("site", "Analyser", SITE_QUERY,
                         "water-quality analysers (scheme outlet and household taps)")


def place_variables() -> list[dashboard_builders.QueryVariable]:
    return [township(), village(), dma()]
