"""What every board shares: identity, time settings, variables and links between boards."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as sdk

from dashboards.queries import InfluxQLQuery, SqlQuery

TAG: Final = "ruralwater"
#: "filter to the chosen villages / DMAs" fragments for InfluxQL WHERE clauses
IN_VILLAGES: Final = '"village" =~ /^$village$/'
IN_DMAS: Final = '"dma" =~ /^$dma$/'
PanelBuilder = cogbuilder.Builder[sdk.Panel]


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel, with the panel's JSON (for units, thresholds, type)."""

    board_uid: str
    panel: dict[str, Any]
    query: InfluxQLQuery | SqlQuery

    @property
    def title(self) -> str:
        return str(self.panel.get("title", ""))


@dataclass(frozen=True)
class Board:
    """A built dashboard and the titles of its main panels (the preview image)."""

    uid: str
    model: sdk.Dashboard
    main_panels: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The dashboard JSON Grafana stores (deterministic: keys sorted on output)."""
        result: dict[str, Any] = json.loads(json.dumps(self.model, cls=JSONEncoder))
        return result

    def panels(self) -> Iterator[sdk.Panel]:
        for item in self.model.panels or []:
            if isinstance(item, sdk.RowPanel):
                yield from (p for p in item.panels if isinstance(p, sdk.Panel))
            elif isinstance(item, sdk.Panel):
                yield item

    def queries(self) -> Iterator[PanelQuery]:
        for panel in self.panels():
            panel_json = json.loads(json.dumps(panel, cls=JSONEncoder))
            for target in panel.targets or []:
                if isinstance(target, InfluxQLQuery | SqlQuery):
                    yield PanelQuery(self.uid, panel_json, target)


def new_board(uid: str, title: str, description: str, *, time_from: str,
              variables: Sequence[cogbuilder.Builder[sdk.VariableModel]],
              refresh: str = "5m") -> dashboard_builders.Dashboard:
    board = (dashboard_builders.Dashboard(title).uid(uid).description(description)
             .tags([TAG]).time(time_from, "now").timezone("browser").refresh(refresh)
             .tooltip(sdk.DashboardCursorSync.CROSSHAIR).editable()
             .link(dashboard_builders.DashboardLink("ruralwater boards")
                   .type(sdk.DashboardLinkType.DASHBOARDS).tags([TAG]).as_dropdown(True)
                   .include_vars(True).keep_time(True)))
    for variable in variables:
        board = board.with_variable(variable)
    return board


def finish(board: dashboard_builders.Dashboard, uid: str,
           main_panels: Sequence[str]) -> Board:
    """Number the panels (Grafana needs unique ids) and check the main panels exist."""
    model = board.build()
    next_id = 1
    for item in model.panels or []:
        item.id_val = next_id
        next_id += 1
        if isinstance(item, sdk.RowPanel):
            for panel in item.panels:
                panel.id_val = next_id
                next_id += 1
    built = Board(uid, model, tuple(main_panels))
    titles = {panel.title for panel in built.panels()}
    missing = [title for title in main_panels if title not in titles]
    if missing:
        raise ValueError(f"board {uid}: main panels {missing} do not exist")
    return built
