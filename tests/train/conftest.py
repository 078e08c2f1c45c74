"""Fixtures for the training tests: small synthetic crop folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import synth  # noqa: E402


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> dict[str, Path]:
    """labelled (30 per class), test (15 per class) and unlabelled (120) synthetic crops."""
    root = tmp_path_factory.mktemp("synth")
    return {
        "labelled": synth.write_labelled(root / "labelled", 30, seed=0),
        "test": synth.write_labelled(root / "test", 15, seed=1),
        "unlabelled": synth.write_unlabelled(root / "unlabelled", 120, seed=2),
    }
