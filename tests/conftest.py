"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_HELA = REPO.parent / "shared" / "data" / "hela"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def hela_frames() -> Path:
    """The real HeLa time-lapse next to the repository; tests using it skip without it."""
    path = SHARED_HELA / "Fluo_Hela_02_img.tif"
    if not path.is_file():
        pytest.skip("real HeLa frames not available next to the repository")
    return path
