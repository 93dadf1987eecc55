"""Tests of the malloc arena limit, each in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "from aetus.server.native_memory import limit_malloc_arenas; "
    "print(limit_malloc_arenas())"
)


def _run_probe(extra_environment: dict[str, str]) -> str:
    environment = {
        key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"
    }
    environment.update(extra_environment)
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.strip()


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="mallopt is a glibc function"
)
def test_limit_malloc_arenas_applies_on_glibc() -> None:
    assert _run_probe({}) == "True"


def test_limit_malloc_arenas_keeps_environment_setting() -> None:
    assert _run_probe({"MALLOC_ARENA_MAX": "4"}) == "False"
