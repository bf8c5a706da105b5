"""Panel builders with the house rules built in: every panel has a unit and thresholds.

Thin functions over the foundation SDK's panel builders. Thresholds are given as
``(value, colour)`` steps, the first with ``None`` as Grafana's base step; time series draw
them as lines so a limit (20 L/person/day, 1 NTU, 12 % NRW) is visible on the chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as sdk_common
from grafana_foundation_sdk.models import dashboard as sdk

Step = tuple[float | None, str]
Target = cogbuilder.Builder[cogvariants.Dataquery]

# Grafana unit ids; custom units use the "suffix:" form.
M3: Final = "m3"
M3_PER_H: Final = "suffix: m³/h"
PERCENT: Final = "percent"
METRES: Final = "lengthm"
HOURS: Final = "h"
COUNT: Final = "none"
LPCD: Final = "suffix: L/person/day"
NTU: Final = "suffix: NTU"
MG_PER_L: Final = "suffix: mg/L"
PH: Final = "suffix: pH"
US_PER_CM: Final = "suffix: µS/cm"
CELSIUS: Final = "celsius"
DAYS: Final = "d"
LITRES_PER_CONNECTION_DAY: Final = "suffix: L/conn/day"
YUAN: Final = "currencyCNY"
HERTZ: Final = "hertz"
AMPERES: Final = "amp"
MPA: Final = "suffix: MPa"

#: Emergency plan levels as the analysis writes them: 0 none, 4 = IV (blue) ... 1 = I (red).
PLAN_LEVELS: Final = {0: ("none", "green"), 4: ("IV", "blue"), 3: ("III", "yellow"),
                      2: ("II", "orange"), 1: ("I", "red")}
#: one neutral step for panels whose quantity has no standard limit (counts are still watched)
NEUTRAL: Final[Sequence[Step]] = ((None, "text"),)


def thresholds(steps: Sequence[Step]) -> dashboard_builders.ThresholdsConfig:
    if not steps or steps[0][0] is not None:
        raise ValueError("thresholds start with the base step (None, colour)")
    return dashboard_builders.ThresholdsConfig().mode(sdk.ThresholdsMode.ABSOLUTE).steps(
        [sdk.Threshold(value=value, color=colour) for value, colour in steps])


def plan_level_mappings() -> list[sdk.ValueMapping]:
    return [sdk.ValueMap(options={
        str(value): sdk.ValueMappingResult(text=text, color=colour, index=index)
        for index, (value, (text, colour)) in enumerate(PLAN_LEVELS.items())})]


def text_mappings(colours: dict[str, str]) -> list[sdk.ValueMapping]:
    """Colour string or boolean values (``closed`` red, ``true`` orange...)."""
    return [sdk.ValueMap(options={
        value: sdk.ValueMappingResult(color=colour, index=index)
        for index, (value, colour) in enumerate(colours.items())})]


def _legend() -> common_builders.VizLegendOptions:
    return (common_builders.VizLegendOptions().display_mode(sdk_common.LegendDisplayMode.TABLE)
            .placement(sdk_common.LegendPlacement.RIGHT).show_legend(True)
            .calcs(["lastNotNull", "min", "max"]))


def time_series(title: str, description: str, unit: str, steps: Sequence[Step],
                targets: Sequence[Target], *, span: int = 12, height: int = 8,
                bars: bool = False, minimum: float | None = None) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).unit(unit)
             .thresholds(thresholds(steps)).span(span).height(height).legend(_legend())
             .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(
                 sdk_common.GraphThresholdsStyleMode.LINE if len(steps) > 1
                 else sdk_common.GraphThresholdsStyleMode.OFF))
             .span_nulls(False).targets(list(targets)))
    if bars:
        panel = panel.draw_style(sdk_common.GraphDrawStyle.BARS).fill_opacity(60)
    if minimum is not None:
        panel = panel.min(minimum)
    return panel


def single_stat(title: str, description: str, unit: str, steps: Sequence[Step],
                targets: Sequence[Target], *, span: int = 6, height: int = 5) -> stat.Panel:
    return (stat.Panel().title(title).description(description).unit(unit)
            .thresholds(thresholds(steps)).span(span).height(height).no_value("0")
            .color_mode(sdk_common.BigValueColorMode.BACKGROUND)
            .graph_mode(sdk_common.BigValueGraphMode.NONE)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"])
                            .values(False))
            .targets(list(targets)))


def bars(title: str, description: str, unit: str, steps: Sequence[Step],
         targets: Sequence[Target], *, span: int = 12, height: int = 8) -> bargauge.Panel:
    return (bargauge.Panel().title(title).description(description).unit(unit)
            .thresholds(thresholds(steps)).span(span).height(height).min(0)
            .display_mode(sdk_common.BarGaugeDisplayMode.BASIC)
            .orientation(sdk_common.VizOrientation.HORIZONTAL)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"])
                            .values(False))
            .targets(list(targets)))


def data_table(title: str, description: str, unit: str, steps: Sequence[Step],
               targets: Sequence[Target], *, sort_by: str = "", descending: bool = False,
               span: int = 12, height: int = 9,
               columns: dict[str, tuple[str, Sequence[Step]]] | None = None,
               column_mappings: dict[str, list[sdk.ValueMapping]] | None = None
               ) -> table.Panel:
    """A table; ``columns`` gives a column its own unit and thresholds, ``column_mappings``
    its own value mappings (plan level numbers shown as IV..I)."""
    panel = (table.Panel().title(title).description(description).unit(unit)
             .thresholds(thresholds(steps)).span(span).height(height).filterable(True)
             .cell_options(sdk_common.TableColorTextCellOptions())
             .transformations([sdk.DataTransformerConfig(id_val="merge", options={})])
             .targets(list(targets)))
    if sort_by:
        panel = panel.sort_by([common_builders.TableSortByFieldState().display_name(sort_by)
                               .desc(descending)])
    for name, column_mapping in (column_mappings or {}).items():
        panel = panel.override_by_name(name, [
            sdk.DynamicConfigValue(id_val="mappings", value=column_mapping)])
    for name, (column_unit, column_steps) in (columns or {}).items():
        panel = panel.override_by_name(name, [
            sdk.DynamicConfigValue(id_val="unit", value=column_unit),
            sdk.DynamicConfigValue(id_val="thresholds", value=thresholds(column_steps).build()),
        ])
    return panel


def state_timeline(title: str, description: str, unit: str, steps: Sequence[Step],
                   targets: Sequence[Target], *, mappings: list[sdk.ValueMapping],
                   span: int = 12, height: int = 8) -> statetimeline.Panel:
    return (statetimeline.Panel().title(title).description(description).unit(unit)
            .thresholds(thresholds(steps)).span(span).height(height).mappings(mappings)
            .show_value(sdk_common.VisibilityMode.AUTO).merge_values(True)
            .color_scheme(dashboard_builders.FieldColor().mode(sdk.FieldColorModeId.THRESHOLDS))
            .targets(list(targets)))
