"""The committed board JSON is what the code generates, and every panel keeps the house rules:
a unit, thresholds, a data source; the provisioning files match what the boards reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import generate
from dashboards.__main__ import main
from dashboards.queries import (
    INFLUX_MIN_INTERVAL,
    INFLUX_NAME,
    INFLUX_UID,
    TICKETS_NAME,
    TICKETS_UID,
)
from dashboards.standards import Standards

PROVISIONING = Path(generate.__file__).resolve().parent / "provisioning"
BOARDS = generate.load()


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def test_generated_json_equals_committed_json() -> None:
    assert generate.stale_files() == []


def test_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    generate.write(tmp_path)
    assert generate.stale_files(tmp_path) == []
    (tmp_path / "rw-dma-balance.json").write_text("{}\n")
    (tmp_path / "rw-old-board.json").write_text("{}\n")
    assert generate.stale_files(tmp_path) == ["rw-dma-balance.json", "rw-old-board.json"]
    assert main(["check"]) == 0


def test_the_six_boards_exist_with_place_variables() -> None:
    assert set(BOARDS) == {"rw-county-overview", "rw-dma-balance", "rw-wells-pumps",
                           "rw-water-quality", "rw-meter-fleet", "rw-tickets-crews"}
    for uid, board in BOARDS.items():
        names = [v["name"] for v in board["templating"]["list"]]
        assert names[:2] == ["township", "village"], uid
    assert [v["name"] for v in BOARDS["rw-dma-balance"]["templating"]["list"]] == [
        "township", "village", "dma"]


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_panel_has_a_unit_thresholds_and_a_query(uid: str) -> None:
    board = BOARDS[uid]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(board):
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), panel["title"]
        steps = defaults["thresholds"]["steps"]
        assert steps and steps[0]["value"] is None, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in {INFLUX_UID, TICKETS_UID}


def test_limits_come_from_the_standards() -> None:
    strict = Standards(turbidity_max_ntu=0.5, supply_min_lpcd=25)
    texts = generate.rendered_boards(strict)
    assert '"value": 0.5' in texts["rw-water-quality.json"]
    assert "Villages below 25 L/person/day" in texts["rw-county-overview.json"]


def test_provisioned_data_sources_are_the_ones_the_boards_use() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources" / "ruralwater.yaml").read_text())
    by_uid = {source["uid"]: source for source in config["datasources"]}
    assert by_uid[INFLUX_UID]["name"] == INFLUX_NAME
    assert by_uid[INFLUX_UID]["jsonData"]["version"] == "InfluxQL"
    assert by_uid[INFLUX_UID]["jsonData"]["timeInterval"] == INFLUX_MIN_INTERVAL
    assert by_uid[TICKETS_UID]["name"] == TICKETS_NAME
    assert by_uid[TICKETS_UID]["type"] == "grafana-postgresql-datasource"


def test_dashboard_provider_reads_the_mounted_generated_folder() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards" / "ruralwater.yaml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/ruralwater"
