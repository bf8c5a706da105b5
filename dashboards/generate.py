"""Write the boards as Grafana JSON into ``dashboards/generated/`` and check them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from dashboards.boards import all_boards
from dashboards.boards.base import Board
from dashboards.standards import Standards

GENERATED: Final = Path(__file__).resolve().parent / "generated"


def render(board: Board) -> str:
    """The board's JSON text: sorted keys and a final newline, so diffs stay small."""
    return json.dumps(board.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered_boards(standards: Standards | None = None) -> dict[str, str]:
    """File name -> JSON text for every board."""
    return {f"{board.uid}.json": render(board) for board in all_boards(standards)}


def write(directory: Path = GENERATED, standards: Standards | None = None) -> list[Path]:
    """Write every board; remove generated boards that no longer exist. Returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = rendered_boards(standards)
    for stale in directory.glob("*.json"):
        if stale.name not in texts:
            stale.unlink()
    written = []
    for name, text in texts.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_files(directory: Path = GENERATED) -> list[str]:
    """Names of generated files that differ from what the code builds now (CI check)."""
    texts = rendered_boards()
    on_disk = {path.name: path.read_text(encoding="utf-8")
               for path in directory.glob("*.json")}
    return sorted(name for name in texts.keys() | on_disk.keys()
                  if texts.get(name) != on_disk.get(name))


def load(directory: Path = GENERATED) -> dict[str, dict[str, Any]]:
    """The committed boards, uid -> dashboard JSON."""
    boards: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        boards[board["uid"]] = board
    return boards
