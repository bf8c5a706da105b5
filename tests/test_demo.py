"""The README's demo command runs end to end on embedded defaults (small and fast here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_demo(tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--data-dir", str(tmp_path / "demo"), *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def points(output: str, measurement: str) -> int:
    match = re.search(rf"^\s+{measurement}\s+(\d+)$", output, re.MULTILINE)
    assert match, output
    return int(match.group(1))


def test_demo_publishes_a_simulated_county_into_influxdb(tmp_path: Path) -> None:
    output = run_demo(tmp_path, "--villages", "2", "--households-per-village", "10",
                      "--days", "0.25", "--speed", "0")
    assert points(output, "meter") > 0 and points(output, "dma_inflow") > 0
    assert "0 dead letters" in output
    assert (tmp_path / "demo" / "truth" / "incidents.json").exists()
    # The analysis made its pass and the ticket service answered with what it holds.
    summary = re.search(r'^\{"now".*"open_alerts": (\d+).*"api_pending": 0', output, re.MULTILINE)
    assert summary, output
    served = re.search(r"^ticket service: (\d+) alerts .*, (\d+) tickets$", output, re.MULTILINE)
    assert served and int(served.group(1)) == int(summary.group(1)), output


def test_demo_through_real_gateways_polling_simulated_devices(tmp_path: Path) -> None:
    output = run_demo(tmp_path, "--via-gateways", "--villages", "1",
                      "--households-per-village", "5", "--minutes", "0.25")
    assert points(output, "meter") >= 5
    assert points(output, "pump") > 0
    assert points(output, "gateway_status") >= 1
