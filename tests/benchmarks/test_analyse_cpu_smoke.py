"""The analyse() benchmark runs end to end on a tiny county, and its compare mode holds.

No timing is asserted; the figures belong to the full run (benchmarks/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "analyse_cpu.py"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--villages", "2", "--days", "3",
         "--cache-dir", str(tmp_path / "cache"), *args],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def test_a_saved_run_compares_equal_to_a_rerun_of_the_same_code(tmp_path: Path) -> None:
    saved = tmp_path / "ref.json"
    first = run(tmp_path, "--save", str(saved))
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(saved.read_text())  # findings and KPIs were written
    again = run(tmp_path, "--compare", str(saved), "--stages")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "villages  meters" in again.stdout and "pipeline.clean" in again.stdout


def test_a_compare_against_different_results_fails(tmp_path: Path) -> None:
    saved = tmp_path / "ref.json"
    assert run(tmp_path, "--save", str(saved)).returncode == 0
    differing = run(tmp_path, "--seed", "7", "--compare", str(saved))
    assert differing.returncode == 1, differing.stdout + differing.stderr
