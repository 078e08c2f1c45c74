"""Fixtures for the reliability tests: tiny model bundles, protocol files, the CLI in-process."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from smartscope.classify.card import CARD_FILE

TESTS = Path(__file__).resolve().parents[1]
CLASSES = ("interphase", "metaphase", "anaphase")
"""Classes of the tiny bundle (those of the classify tests' bundle builder)."""


def _classify_helpers() -> ModuleType:
    """The classify tests' bundle builder (tests/classify/conftest.py), loaded by path."""
    spec = importlib.util.spec_from_file_location(
        "_reliability_bundle_helpers", TESTS / "classify" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A real int8 bundle (3 classes, 64 px input) built with TensorFlow once per session."""
    return _classify_helpers().build_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def copy_bundle(src: Path, dst: Path, card_update: dict | None = None) -> Path:
    """Copy a bundle folder, optionally changing fields of its card (nested dicts merged)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    if card_update:
        card = json.loads((dst / CARD_FILE).read_text())
        for key, value in card_update.items():
            if isinstance(value, dict):
                card[key] = {**card[key], **value}
            else:
                card[key] = value
        (dst / CARD_FILE).write_text(json.dumps(card))
    return dst


def base_protocol(bundle: Path | str = "bundle", **screening) -> dict:
    """A small valid simulated protocol (as a dict) that a test then breaks."""
    return {
        "version": 1,
        "microscope": {"type": "simulated", "seed": 0, "n_cells": 40, "sensor_px": 256,
                       "time_scale": 60,
                       "objectives": {"10x": {}, "60x": {"parfocal_z_offset_um": 3.0}}},
        "screening": {"objective": "10x", "channel": "FITC", "exposure_ms": 5,
                      "interval_s": 0.1, "n_timepoints": 2, **screening},
        "model": {"bundle": str(bundle)},
        "triggers": [{"name": "zoom", "phase": "metaphase", "min_confidence": 0.7,
                      "once_per_cell": False,  # the same fake cell triggers every time point
                      "actions": [{"type": "centre_on_cell", "objective": "60x"},
                                  {"type": "burst", "n_frames": 2}]}],
        "on_error": "continue",
    }


def write_protocol(folder: Path, data: dict | str, name: str = "protocol.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    """Run ``smartscope ...`` in-process; returns exit code, stdout and stderr."""
    from smartscope.cli import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
