"""Device knowledge as data: meter models and register profiles, one YAML or JSON file each.

Both ``cjt188/models/`` and ``modbus_profiles/profiles/`` hold named documents; this module
reads them the same way and turns every failure into the caller's own error type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

SUFFIXES = frozenset({".yaml", ".yml", ".json"})


Document = TypeVar("Document", bound=BaseModel)


def read_document(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def load_document(path: Path, model: type[Document], error: type[Exception],
                  what: str) -> Document:
    """One document, validated; ``error`` says which file and why when it cannot be."""
    try:
        return model.model_validate(read_document(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from exc
    except ValidationError as exc:
        raise error(f"{what} {path} is not valid: {exc}") from exc


def load_directory(directory: Path, model: type[Document], error: type[Exception],
                   what: str) -> dict[str, Document]:
    """Every document in ``directory`` by its ``name``; one name in two files is an error."""
    found: dict[str, Document] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in SUFFIXES:
            continue
        document = load_document(path, model, error, what)
        name: str = document.name  # type: ignore[attr-defined]  # every data file is named
        if name in found:
            raise error(f"{what} {name!r} is defined twice ({path})")
        found[name] = document
    return found
