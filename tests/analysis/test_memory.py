"""The worker keeps the memory a pass frees: a block freed and asked for again costs no new
page faults (counted by the kernel, not timed), and the setting decides whether it asks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import analysis.worker
from analysis.params import AnalysisParams
from analysis.tracker import AlertTracker, Target
from analysis.worker import Worker
from common.influx import InfluxClient
from common.settings import AnalysisSettings, InfluxSettings
from simulator.county import build_county

# In a fresh interpreter: free a 64 MB array, allocate and fill one of the same size again,
# print the page faults of the second allocation.
_REUSE = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from analysis.memory import keep_freed_memory
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(8_000_000)
del block
before = faults()
block = np.ones(8_000_000)
print(faults() - before)
"""


def _faults_of_a_reused_block(mode: str) -> int:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _REUSE, mode], cwd=root, check=True,
                          capture_output=True, text=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_block_is_reused_without_faulting_its_pages_in_again() -> None:
    default = _faults_of_a_reused_block("default")
    kept = _faults_of_a_reused_block("keep")
    # 64 MB are at least 32 huge pages (16,384 small ones) when mapped afresh
    assert default >= 32
    assert kept < default / 4


@pytest.mark.parametrize("keep", [True, False])
def test_the_worker_keeps_freed_memory_only_when_the_setting_says_so(
        keep: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(analysis.worker, "keep_freed_memory", lambda: calls.append(True))
    state = tmp_path / "alerts.sqlite3"
    section = AnalysisSettings(state_db=state, api_url="", keep_freed_memory=keep)
    influx = InfluxClient(InfluxSettings(url="http://127.0.0.1:9"))
    worker = Worker(section, register=build_county(3, 1), params=AnalysisParams(),
                    influx=influx, tracker=AlertTracker(state, targets=(Target.INFLUX,)),
                    api=None)
    worker.close()
    assert calls == ([True] if keep else [])
