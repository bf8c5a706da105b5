"""The docs stay true to common/: contract examples validate, the InfluxDB field table matches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from common import contract, schema

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = re.compile(r"<!-- model: (\w+) -->\s*```json\n(.*?)\n```", re.DOTALL)


def contract_examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((DOCS / "contract.md").read_text())


def test_contract_doc_has_an_example_of_every_message() -> None:
    documented = {name for name, _ in contract_examples()}
    assert documented == {
        "TelemetryMessage", "EventMessage", "StatusMessage", "CommandMessage", "CommandResult",
    }


@pytest.mark.parametrize(("model_name", "example"), contract_examples())
def test_contract_doc_example_is_valid(model_name: str, example: str) -> None:
    model = getattr(contract, model_name)
    assert issubclass(model, BaseModel)
    model.model_validate_json(example)


def test_contract_doc_telemetry_example_shows_every_reading_kind() -> None:
    telemetry = [json.loads(body) for name, body in contract_examples()
                 if name == "TelemetryMessage"]
    kinds = {reading["kind"] for message in telemetry for reading in message["readings"]}
    assert kinds == set(contract.DEVICE_KINDS)


def test_influxdb_doc_field_table_matches_the_schema() -> None:
    # Rows of the field table: | `measurement` | `field` | type | unit | ...
    row = re.compile(r"^\|\s*`(\w+)`\s*\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|", re.MULTILINE)
    documented = set(row.findall((DOCS / "influxdb.md").read_text()))
    expected = {
        (measurement, field_name, kind)
        for measurement, fields in schema.FIELDS.items()
        for field_name, kind in fields.items()
    }
    assert documented == expected
