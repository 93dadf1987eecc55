"""mypy in strict mode over the SDK and server packages, with pyproject's settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

# Source trees checked, relative to the repository root.
TYPED_PATHS = ["sdk/src", "server/src"]


def test_mypy_strict_packages_clean(tmp_path: Path) -> None:
    # A fresh cache, because mypy 2.4.1 reused a stale cached google.api after
    # the follow_untyped_imports setting changed and reported a false error.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            *TYPED_PATHS,
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
