"""benchmarks/_revision.py: the commit measured, marked when the measured paths changed."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("_revision", REPO / "benchmarks" / "_revision.py")
assert _spec is not None and _spec.loader is not None
_revision = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_revision)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_the_revision_is_marked_only_for_changes_under_the_measured_paths(
        tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    for folder in ("analysis", "docs"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_text("one\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "x")
    head = _git(tmp_path, "rev-parse", "--short", "HEAD")
    assert _revision.code_revision(tmp_path, "analysis") == head
    (tmp_path / "docs" / "a.txt").write_text("two\n")
    assert _revision.code_revision(tmp_path, "analysis") == head
    assert _revision.code_revision(tmp_path) == f"{head}+uncommitted"
    (tmp_path / "analysis" / "a.txt").write_text("two\n")
    assert _revision.code_revision(tmp_path, "analysis", "common") == f"{head}+uncommitted"


def test_outside_a_checkout_the_revision_is_unknown(tmp_path: Path) -> None:
    assert _revision.code_revision(tmp_path / "missing", "analysis") == "unknown"
