"""The README stays true: its configuration table names every setting, and only real ones."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from common.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def every_setting_variable() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"RURALWATER_{name.upper()}__{sub.upper()}"
                      for sub in annotation.model_fields}
        else:
            names.add(f"RURALWATER_{name.upper()}")
    return names


def test_configuration_table_lists_exactly_the_settings() -> None:
    table = set(re.findall(r"^\| `(RURALWATER_[A-Z0-9_]+)`", README.read_text(), re.MULTILINE))
    assert table == every_setting_variable()


def test_readme_gives_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "./scripts/demo.sh" in text and "./scripts/test.sh" in text
    for script in ("scripts/demo.sh", "scripts/test.sh", ".ci/run"):
        assert (README.parent / script).stat().st_mode & 0o111, f"{script} is not executable"
