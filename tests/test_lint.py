"""Ruff lint and format checks over the Python sources, with pyproject's settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]

# Paths checked, relative to the repository root.
LINTED_PATHS = [
    "bench",
    "protos/generate.py",
    "protos/tests",
    "sdk",
    "server",
    "tests",
]


def _run_ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *LINTED_PATHS],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--no-cache", "--output-format", "concise"),
        ("format", "--no-cache", "--check", "--diff"),
    ],
    ids=["check", "format"],
)
def test_ruff_sources_clean(args: tuple[str, ...]) -> None:
    result = _run_ruff(*args)

    fix = "run `.venv/bin/ruff check --fix` and `.venv/bin/ruff format` on them"
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{fix}"
