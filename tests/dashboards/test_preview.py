"""Preview images are drawn from real query results: each board's main panels, one PNG."""

from __future__ import annotations

from pathlib import Path

import psycopg
from matplotlib.image import imread

from common.influx import InfluxClient
from dashboards.boards import all_boards
from dashboards.expand import TimeRange
from dashboards.preview import render_board
from dashboards.runner import BoardRunner


def test_every_board_renders_its_main_panels_from_real_data(
        tmp_path: Path, loaded_influx: InfluxClient, sample_range: TimeRange,
        tickets_db: psycopg.Connection) -> None:
    runner = BoardRunner(sample_range, influx=loaded_influx, tickets=tickets_db)
    for board in all_boards():
        path = render_board(board, runner, tmp_path, "test")
        image = imread(path)
        assert image.shape[0] > 500 and image.shape[1] > 1000
        # not a blank canvas: real panels have many distinct colours
        assert len({tuple(pixel) for pixel in image[::8, ::8].reshape(-1, image.shape[2])}) > 20


def test_committed_previews_exist_for_every_board() -> None:
    images = Path(__file__).resolve().parents[2] / "docs" / "images" / "boards"
    assert {path.stem for path in images.glob("*.png")} == {b.uid for b in all_boards()}
