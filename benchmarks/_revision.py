"""The code a benchmark measured: the commit, marked when the measured paths have changes.

Shared by the benchmark scripts (``from _revision import code_revision``: a script's own
folder is first on ``sys.path``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def code_revision(repo: Path, *paths: str) -> str:
    """``git rev-parse --short HEAD`` of ``repo``, with ``+uncommitted`` when any of ``paths``
    (relative to ``repo``; none: the whole tree) has uncommitted changes; ``unknown``
    outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=repo,
                               check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{'+uncommitted' if dirty.strip() else ''}"
