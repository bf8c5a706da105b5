"""python -m analysis offline on a CSV made from the simulator; argument and input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.source import write_csv
from common.alerts import Alert, AlertStatus
from simulator.incidents import Incident
from tests.analysis.simdata import START, Simulated, simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def leaky() -> Simulated:
    incidents = [Incident(kind="background_leak", target="dma-v002-b1",
                          start=START + timedelta(days=3, hours=5), magnitude=0.10,
                          relative=True)]
    return simulate(2, 30, 4.5, incidents=incidents)


@pytest.fixture(scope="module")
def exported(leaky: Simulated, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("offline")
    leaky.county.write(folder / "register.json")
    write_csv(leaky.readings, folder / "readings.csv")
    return folder / "register.json", folder / "readings.csv"


def test_offline_prints_the_leak_as_an_alert_json_line(
        exported: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    register, readings = exported
    now = (START + timedelta(days=4, hours=8)).isoformat()
    code = main(["--register", str(register), "offline", "--readings", str(readings),
                 "--now", now])
    out = capsys.readouterr().out
    assert code == 0
    alerts = [Alert.model_validate_json(line) for line in out.splitlines()]
    leak = next(a for a in alerts if a.key == "night_flow:dma-v002")
    assert leak.status is AlertStatus.OPEN and leak.place.dma == "dma-v002"
    assert leak.detected_at.isoformat() == now
    assert not [a for a in alerts if a.key == "night_flow:dma-v001"]


def test_offline_keeps_state_between_runs_when_asked(
        exported: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    register, readings = exported
    state = tmp_path / "state.sqlite3"
    args = ["--register", str(register), "offline", "--readings", str(readings),
            "--state", str(state), "--now"]
    main([*args, (START + timedelta(days=4, hours=8)).isoformat()])
    first = {Alert.model_validate_json(x).key: Alert.model_validate_json(x)
             for x in capsys.readouterr().out.splitlines()}
    main([*args, (START + timedelta(days=4, hours=9)).isoformat()])
    second = {Alert.model_validate_json(x).key: Alert.model_validate_json(x)
              for x in capsys.readouterr().out.splitlines()}
    key = "night_flow:dma-v002"
    assert second[key].detected_at == first[key].detected_at  # the same alert, not a new one


def test_python_m_analysis_runs_offline_as_a_process(exported: tuple[Path, Path]) -> None:
    register, readings = exported
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "--register", str(register), "offline",
         "--readings", str(readings)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        assert json.loads(line)["schema_version"] == 1


def test_a_csv_without_the_long_format_columns_is_refused_with_status_2(
        exported: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    register, _ = exported
    bad = tmp_path / "bad.csv"
    bad.write_text("time,device,value\n2026-06-01T00:00Z,m1,1.0\n")
    assert main(["--register", str(register), "offline", "--readings", str(bad)]) == 2
    assert "missing columns" in capsys.readouterr().err


def test_a_missing_register_is_a_configuration_error(
        exported: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, readings = exported
    code = main(["--register", str(tmp_path / "none.json"), "offline", "--readings",
                 str(readings)])
    assert code == 2 and "asset register" in capsys.readouterr().err


def test_the_report_subcommand_writes_the_report_from_a_csv(
        exported: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    register, readings = exported
    out = tmp_path / "report"
    assert main(["--register", str(register), "report", "--readings", str(readings),
                 "--out", str(out), "--worst", "1"]) == 0
    written = capsys.readouterr().out.split()
    assert str(out / "villages_monthly.csv") in written
    assert (out / "report.xlsx").stat().st_size > 0
    assert len(list(out.glob("night_flow_balance_*.png"))) == 1
