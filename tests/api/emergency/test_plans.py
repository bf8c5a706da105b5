"""Plan definitions as configuration: the shipped default and what a plan file must hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from api.emergency.plans import LEVELS, PlanError, default_plan, load_plan, rank


def test_default_seasonal_shortage_plan_names_every_level_with_triggers_and_actions() -> None:
    plan = default_plan()
    assert plan.name == "seasonal_shortage"
    assert [plan.levels[level].colour for level in LEVELS] == ["blue", "yellow", "orange",
                                                               "red"]
    codes = {action.code for level in LEVELS for action in plan.levels[level].actions}
    assert {"restrict_non_domestic", "scheduled_supply", "water_trucking", "emergency_well",
            "county_command"} <= codes


def test_actions_accumulate_from_the_lowest_level() -> None:
    plan = default_plan()
    assert [(level, action.code) for level, action in plan.actions_at("III")] == [
        ("IV", "watch_source"), ("IV", "restrict_non_domestic"),
        ("III", "scheduled_supply"), ("III", "check_monitored_households")]
    assert len(plan.actions_at("I")) == 7


@pytest.mark.parametrize(("evidence", "level"), [
    ({}, None),
    ({"unmet_share": 0.01, "people_affected": 50, "days_to_shortfall": 30.0}, None),
    ({"unmet_share": 0.05}, "IV"),
    ({"days_to_shortfall": 7}, "III"),
    ({"unmet_share": 0.10, "people_affected": 1200}, "II"),
    ({"days_to_shortfall": 0.5}, "I"),
    ({"unmet_share": "a lot", "days_to_shortfall": True}, None),
])
def test_triggers_pick_the_highest_level_any_criterion_reaches(evidence: dict[str, object],
                                                               level: str | None) -> None:
    assert default_plan().level_for(evidence) == level  # type: ignore[arg-type]


def test_levels_rank_iv_lowest_to_i_highest() -> None:
    assert [rank(level) for level in ("IV", "III", "II", "I")] == [1, 2, 3, 4]


def write_plan(tmp_path: Path, edit: dict[str, object]) -> Path:
    raw = default_plan().model_dump(mode="json")
    raw.update(edit)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_a_plan_file_round_trips(tmp_path: Path) -> None:
    assert load_plan(write_plan(tmp_path, {"name": "drought_2026"})).name == "drought_2026"


def test_a_plan_missing_a_level_is_refused(tmp_path: Path) -> None:
    levels = default_plan().model_dump(mode="json")["levels"]
    del levels["I"]
    with pytest.raises(PlanError, match="lacks levels I"):
        load_plan(write_plan(tmp_path, {"levels": levels}))


def test_an_action_code_on_two_levels_is_refused(tmp_path: Path) -> None:
    levels = default_plan().model_dump(mode="json")["levels"]
    levels["I"]["actions"].append(levels["IV"]["actions"][0])
    with pytest.raises(PlanError, match="watch_source"):
        load_plan(write_plan(tmp_path, {"levels": levels}))


def test_an_unreadable_plan_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(PlanError, match="not a mapping"):
        load_plan(tmp_path / "list.yaml")
