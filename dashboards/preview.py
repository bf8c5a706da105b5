"""Render each board's main panels with matplotlib from real query results.

The queries are the boards' own, expanded by :mod:`dashboards.expand` and run by
:class:`dashboards.runner.BoardRunner` against InfluxDB (a fresh local one loaded with
simulator data and the analysis's output for it unless ``influx_url`` is given) and the
ticket tables on PostgreSQL (a throw-away schema on ``postgres_admin_url`` holding the tickets
the ticket service made from the same alerts; the tickets board is skipped when none
answers). The
picture is an approximation of Grafana's panels, drawn so a reader sees what staff will see.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402 - the backend is chosen first
import matplotlib.pyplot as plt  # noqa: E402
import psycopg  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from common.influx import InfluxClient  # noqa: E402
from common.localservices import InfluxDB  # noqa: E402
from common.settings import InfluxSettings  # noqa: E402
from dashboards.boards import all_boards  # noqa: E402
from dashboards.boards.base import Board  # noqa: E402
from dashboards.expand import TimeRange  # noqa: E402
from dashboards.runner import BoardRunner, Result  # noqa: E402
from dashboards.sample import Sample, build_sample  # noqa: E402
from dashboards.ticketdb import (  # noqa: E402
    POSTGRES_ADMIN,
    TicketDatabase,
    replay_tickets,
    ticket_database,
)

log = logging.getLogger(__name__)

IMAGES: Final = Path(__file__).resolve().parents[1] / "docs" / "images" / "boards"
COLOURS: Final = {"green": "#56a64b", "yellow": "#f2cc0c", "orange": "#ff9830",
                  "red": "#e02f44", "blue": "#3274d9", "text": "#8e8e8e"}


def _colour(name: str) -> str:
    return COLOURS.get(name, name)


def _unit_label(unit: str) -> str:
    return {"m3": "m³", "percent": "%", "lengthm": "m", "h": "h", "none": "", "d": "days",
            "celsius": "°C", "currencyCNY": "yuan"}.get(unit, unit.replace("suffix:", "").strip())


def _steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["value"], step["color"]) for step in steps]


def _step_colour(panel: dict[str, Any], value: float) -> str:
    colour = "text"
    for threshold, name in _steps(panel):
        if threshold is None or value >= threshold:
            colour = name
    return _colour(colour)


def _label(alias: str, tags: dict[str, str], column: str) -> str:
    if not alias:
        return " ".join(tags.values()) or column
    text = re.sub(r"\$tag_(\w+)", lambda m: tags.get(m.group(1), ""), alias)
    return text.replace("$col", column).strip()


def _times(rows: Sequence[Sequence[Any]]) -> list[datetime]:
    return [datetime.fromtimestamp(float(row[0]) / (1 if float(row[0]) < 1e11 else 1000),
                                   tz=UTC) for row in rows]


def _draw_timeseries(axes: Axes, panel: dict[str, Any], results: Sequence[Result]) -> None:
    bars = panel["fieldConfig"]["defaults"].get("custom", {}).get("drawStyle") == "bars"
    for result in results:
        target = next(t for t in panel["targets"] if t["refId"] == result.query.query.ref_id)
        series = result.series or [({}, result.columns, result.rows)]
        for tags, columns, rows in series:
            if not rows:
                continue
            for index, column in enumerate(columns[1:], start=1):
                values = [float(row[index]) if isinstance(row[index], int | float)
                          and not isinstance(row[index], bool) else math.nan for row in rows]
                if all(math.isnan(v) for v in values):
                    continue
                label = _label(target.get("alias", ""), tags, column)
                times = [t for t, v in zip(_times(rows), values, strict=True)
                         if not math.isnan(v)]
                values = [v for v in values if not math.isnan(v)]
                if bars:
                    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:],
                                                                      strict=False)]
                    width_days = 0.8 * (min(gaps) if gaps else 3600) / 86400
                    axes.bar(mdates.date2num(times), values, width=width_days, alpha=0.7,
                             label=label)
                else:
                    axes.plot(mdates.date2num(times), values, linewidth=1.2, label=label)
    for value, colour in _steps(panel):
        if value is not None:
            axes.axhline(value, color=_colour(colour), linestyle="--", linewidth=1)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    axes.tick_params(axis="x", labelsize=7, rotation=20)
    axes.set_ylabel(_unit_label(panel["fieldConfig"]["defaults"]["unit"]))
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="upper left")


def _draw_stat(axes: Axes, panel: dict[str, Any], results: Sequence[Result]) -> None:
    rows = [row for result in results for row in result.rows]
    value = float(rows[-1][-1] or 0) if rows else 0.0
    axes.set_facecolor(_step_colour(panel, value))
    unit = _unit_label(panel["fieldConfig"]["defaults"]["unit"])
    axes.text(0.5, 0.5, f"{value:.0f} {unit}".strip(), ha="center", va="center",
              fontsize=40, color="white", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _bar_items(results: Sequence[Result]) -> list[tuple[str, float]]:
    items: list[tuple[str, float]] = []
    for result in results:
        alias = getattr(result.query.query, "alias", "")
        if result.series:
            for tags, columns, rows in result.series:
                if rows:
                    items.append((_label(alias, tags, columns[-1]), float(rows[-1][-1] or 0)))
        else:
            items.extend((str(row[0]), float(row[1] or 0)) for row in result.rows)
    return items


def _draw_bars(axes: Axes, panel: dict[str, Any], results: Sequence[Result]) -> None:
    items = _bar_items(results)
    labels = [label for label, _ in items]
    values = [value for _, value in items]
    axes.barh(labels, values, color=[_step_colour(panel, v) for v in values])
    for index, value in enumerate(values):
        axes.text(value, index, f" {value:g}", va="center", fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(_unit_label(panel["fieldConfig"]["defaults"]["unit"]))


def _draw_state_timeline(axes: Axes, panel: dict[str, Any], results: Sequence[Result]) -> None:
    mappings: dict[str, dict[str, str]] = {}
    for mapping in panel["fieldConfig"]["defaults"].get("mappings", []):
        mappings.update(mapping.get("options", {}))
    rows_of = [(tags, rows) for result in results for tags, _, rows in result.series]
    for lane, (_, rows) in enumerate(rows_of):
        times = mdates.date2num(_times(rows))
        for (start, row), end in zip(zip(times, rows, strict=True), [*times[1:], times[-1]],
                                     strict=True):
            value = row[1]
            if value is None:
                continue
            key = str(value).lower() if isinstance(value, bool) else str(value)
            colour = mappings.get(key, {}).get("color") or (
                _step_colour(panel, float(value)) if not isinstance(value, str) else "text")
            axes.barh(lane, end - start, left=start, color=_colour(colour), height=0.8)
    axes.set_yticks(range(len(rows_of)), [" ".join(t.values()) for t, _ in rows_of],
                    fontsize=8)
    axes.xaxis_date()
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    axes.tick_params(axis="x", labelsize=7, rotation=20)
    legend = [Patch(color=_colour(m.get("color", "text")), label=m.get("text") or key)
              for key, m in mappings.items()]
    if legend:
        axes.legend(handles=legend, fontsize=7, loc="upper left", ncol=len(legend))


def _draw_table(axes: Axes, panel: dict[str, Any], results: Sequence[Result]) -> None:
    header: list[str] = []
    cells: list[list[str]] = []
    for result in results:
        tag_names = list(result.series[0][0]) if result.series else []
        header = tag_names + [c for c in result.columns if c != "time"]
        sources = result.series or [({}, result.columns, result.rows)]
        for tags, columns, rows in sources:
            for row in rows:
                values = [row[i] for i, c in enumerate(columns) if c != "time"]
                cells.append([str(tags.get(t, "")) for t in tag_names]
                             + [f"{v:.2f}" if isinstance(v, float) else str(v) for v in values])
    axes.axis("off")
    if cells:
        table = axes.table(cellText=cells[:10], colLabels=header, loc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(7)


DRAW: Final = {"timeseries": _draw_timeseries, "stat": _draw_stat, "bargauge": _draw_bars,
               "state-timeline": _draw_state_timeline, "table": _draw_table}


def render_board(board: Board, runner: BoardRunner, out: Path, note: str) -> Path:
    """One PNG of the board's main panels (2 x 2) from the runner's query results."""
    board_json = board.to_json()
    variables = runner.resolve_variables(board_json)
    queries = list(board.queries())
    figure, grid = plt.subplots(2, 2, figsize=(15, 8.5))
    for axes, title in zip(grid.flat, board.main_panels, strict=False):
        mine = [q for q in queries if q.title == title]
        panel = mine[0].panel
        results = [runner.run(q, variables) for q in mine]
        DRAW[panel["type"]](axes, panel, results)
        axes.set_title(title, fontsize=11, loc="left")
    figure.suptitle(f"{board_json['title']}  (ruralwater, Grafana board {board.uid})",
                    fontsize=14, x=0.01, ha="left")
    figure.text(0.01, 0.005, note, fontsize=8, color="#555555")
    figure.tight_layout(rect=(0, 0.02, 1, 0.96))
    path = out / f"{board.uid}.png"
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


@contextmanager
def _local_influx(sample: Sample) -> Iterator[InfluxClient]:
    with tempfile.TemporaryDirectory(prefix="ruralwater-preview-") as folder:
        server = InfluxDB(Path(folder) / "influxdb")
        server.start()
        try:
            client = InfluxClient(InfluxSettings(url=server.url, database="preview"))
            client.ensure_database()
            sample.load(client)
            yield client
            client.close()
        finally:
            server.stop()


@contextmanager
def _ticket_database(sample: Sample, admin_url: str) -> Iterator[psycopg.Connection | None]:
    """The ticket tables with the sample's tickets, or None when no PostgreSQL answers."""
    with ExitStack() as stack:
        database: TicketDatabase | None = None
        try:
            database = stack.enter_context(ticket_database(admin_url))
        except psycopg.OperationalError as exc:
            log.warning("no PostgreSQL at %s (%s): the tickets board is skipped", admin_url,
                        exc)
        if database is None:
            yield None
            return
        log.info("tickets replayed: %s", replay_tickets(database.sessions, sample))
        yield database.connection


def render_previews(out: Path | None = None, *, influx_url: str | None = None,
                    database: str = "ruralwater",
                    postgres_admin_url: str = POSTGRES_ADMIN) -> list[Path]:
    """Render every board's preview; returns the PNG paths."""
    folder = out or IMAGES
    folder.mkdir(parents=True, exist_ok=True)
    sample = build_sample()
    note = (f"Real query results: simulator seed {sample.county.seed}, "
            f"{len(sample.county.villages)} villages, {len(sample.county.households)} meters, "
            f"{(sample.end - sample.start).days} days, {len(sample.passes)} analysis passes; "
            "alert / dma_kpi / supply_outlook written by the analysis, tickets by the ticket "
            "service (dashboards/sample.py, dashboards/ticketdb.py).")
    with ExitStack() as stack:
        if influx_url is None:
            influx = stack.enter_context(_local_influx(sample))
            time_range = TimeRange(sample.start, sample.end)
        else:
            influx = stack.enter_context(InfluxClient(InfluxSettings(url=influx_url,
                                                                     database=database)))
            time_range = TimeRange.last(sample.end - sample.start)
            note = f"Real query results from the InfluxDB at {influx_url}."
        tickets = stack.enter_context(_ticket_database(sample, postgres_admin_url))
        runner = BoardRunner(time_range, influx=influx, tickets=tickets)
        paths = []
        for board in all_boards():
            needs_sql = any(q.query.__class__.__name__ == "SqlQuery" for q in board.queries()
                            if q.title in board.main_panels)
            if needs_sql and tickets is None:
                continue
            paths.append(render_board(board, runner, folder, note))
        return paths
