"""Fixtures for the round-trip tests: the folder of real sensor recordings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Return the recordings folder named by AETUS_TEST_DATA_DIR, or skip."""
    configured = os.environ.get("AETUS_TEST_DATA_DIR")
    folder = Path(configured) if configured else _REPOSITORY.parent / "shared" / "data"
    if not folder.is_dir():
        pytest.skip(f"recordings folder {folder} is absent; set AETUS_TEST_DATA_DIR")
    return folder
