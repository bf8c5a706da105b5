"""Emergency plan definitions as configuration: levels IV..I, their triggers and actions.

A plan is YAML (``plans/seasonal_shortage.yaml`` is the default); ``PlanDefinition`` is its
schema. Levels rank IV (general) < III < II < I (especially major). Actions accumulate: a
level requires its own actions and those of every lower level.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.alerts import AlertKind, Evidence, PlanLevel

#: lowest to highest
LEVELS: Final[tuple[PlanLevel, ...]] = ("IV", "III", "II", "I")
DEFAULT_PLAN_FILE: Final = "seasonal_shortage.yaml"


class PlanError(ValueError):
    """A plan file that cannot be read or does not make sense."""


def rank(level: PlanLevel) -> int:
    """1 for IV up to 4 for I."""
    return LEVELS.index(level) + 1


class Triggers(BaseModel):
    """A level fires when any criterion given here is met."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unmet_share_min: float | None = Field(default=None, ge=0, le=1,
                                          description="share of demand not supplied, 0..1")
    people_affected_min: int | None = Field(default=None, ge=0)
    source_days_max: float | None = Field(default=None, ge=0,
                                          description="days the source will last, or fewer")

    def met(self, unmet_share: float | None, people_affected: float | None,
            source_days: float | None) -> bool:
        return any((
            _at_least(unmet_share, self.unmet_share_min),
            _at_least(people_affected, self.people_affected_min),
            self.source_days_max is not None and source_days is not None
            and source_days <= self.source_days_max,
        ))


def _at_least(value: float | None, threshold: float | None) -> bool:
    return threshold is not None and value is not None and value >= threshold


class ActionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    assignee_role: Annotated[str, Field(min_length=1, max_length=40,
                                        description="who carries it out: crew, dispatcher...")]
    due_within_h: float = Field(gt=0, description="hours from the task's creation")


class LevelDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    colour: str
    triggers: Triggers = Triggers()
    actions: list[ActionDefinition] = Field(default_factory=list)


class EvidenceKeys(BaseModel):
    """Names of the alert evidence entries the triggers read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unmet_share: str = "unmet_share"
    people_affected: str = "people_affected"
    source_days: str = "days_to_shortfall"


class PlanDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    title: str
    alert_kind: AlertKind = AlertKind.SHORTAGE
    evidence: EvidenceKeys = EvidenceKeys()
    levels: dict[PlanLevel, LevelDefinition]

    @model_validator(mode="after")
    def _every_level_and_unique_codes(self) -> PlanDefinition:
        missing = [level for level in LEVELS if level not in self.levels]
        if missing:
            raise ValueError(f"plan {self.name} lacks levels {', '.join(missing)}")
        codes = [action.code for level in LEVELS for action in self.levels[level].actions]
        duplicated = sorted({code for code in codes if codes.count(code) > 1})
        if duplicated:
            raise ValueError(f"action codes used on more than one level: {duplicated}")
        return self

    def actions_at(self, level: PlanLevel) -> list[tuple[PlanLevel, ActionDefinition]]:
        """Every action ``level`` requires, lowest level's first, with the level defining it."""
        return [(lower, action) for lower in LEVELS[:rank(level)]
                for action in self.levels[lower].actions]

    def level_for(self, evidence: Evidence) -> PlanLevel | None:
        """The highest level whose triggers the evidence meets, or None."""
        unmet = _number(evidence, self.evidence.unmet_share)
        people = _number(evidence, self.evidence.people_affected)
        days = _number(evidence, self.evidence.source_days)
        fired = [level for level in LEVELS if self.levels[level].triggers.met(unmet, people, days)]
        return fired[-1] if fired else None


def _number(evidence: Evidence, key: str) -> float | None:
    value = evidence.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_plan(raw: Mapping[str, object], source: str) -> PlanDefinition:
    try:
        return PlanDefinition.model_validate(raw)
    except ValidationError as exc:
        raise PlanError(f"invalid emergency plan {source}: {exc}") from exc


def load_plan(path: Path) -> PlanDefinition:
    """Read and validate one plan file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlanError(f"cannot read emergency plan {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise PlanError(f"emergency plan {path} is not a mapping")
    return parse_plan(raw, str(path))


def default_plan() -> PlanDefinition:
    """The seasonal-shortage plan shipped with the package."""
    text = resources.files("api.emergency").joinpath("plans").joinpath(DEFAULT_PLAN_FILE).read_text(
        encoding="utf-8")
    return parse_plan(yaml.safe_load(text), DEFAULT_PLAN_FILE)
