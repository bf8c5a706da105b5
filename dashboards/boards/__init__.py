"""The boards, one module each; :data:`BOARDS` lists their builders in menu order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from dashboards.boards import county, dma, meters, quality, tickets, wells
from dashboards.boards.base import Board
from dashboards.standards import Standards

BOARDS: Final[tuple[Callable[[Standards], Board], ...]] = (
    county.build, dma.build, wells.build, quality.build, meters.build, tickets.build,
)


def all_boards(standards: Standards | None = None) -> list[Board]:
    figures = standards or Standards()
    return [build(figures) for build in BOARDS]
