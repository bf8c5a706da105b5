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


def test_a_saved_run_compares_equal_to_a_rerun_and_unequal_to_other_results(
        tmp_path: Path) -> None:
    saved = tmp_path / "ref.json"
    first = run(tmp_path, "--save", str(saved))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "freed memory kept" in first.stdout  # as the worker runs
    again = run(tmp_path, "--compare", str(saved), "--stages", "--give-back-memory")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "freed memory given back" in again.stdout
    assert "villages  meters" in again.stdout and "pipeline.clean" in again.stdout
    # Other results (one evidence number changed) must fail the compare.
    results = json.loads(saved.read_text())
    finding = next(f for scale in results.values() for f in scale["findings"] if f["evidence"])
    name = next(iter(finding["evidence"]))
    finding["evidence"][name] = float(finding["evidence"][name]) * 1.5 + 1.0
    other = tmp_path / "other.json"
    other.write_text(json.dumps(results))
    differing = run(tmp_path, "--compare", str(other))
    assert differing.returncode == 1, differing.stdout + differing.stderr
