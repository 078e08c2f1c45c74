"""The bad-input catalogue through a real process (stderr holds exactly one line, ``--debug``
shows the traceback) and training budgets of nothing, refused before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartscope.errors import ProtocolError

from .test_bad_input import CATALOGUE

REPO = Path(__file__).resolve().parents[2]


def _subprocess(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smartscope", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize("case_id", ["typo-field", "image-colour-3d"])
def test_one_line_in_a_real_process(case_id, tmp_path, tiny_bundle):
    case = next(c for c in CATALOGUE if c.id == case_id)
    proc = _subprocess(*case.make(tmp_path, tiny_bundle))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert all(text in lines[0] for text in case.expect)


def test_debug_shows_the_traceback(tmp_path, tiny_bundle):
    case = next(c for c in CATALOGUE if c.id == "negative-interval")
    argv = [str(a) for a in case.make(tmp_path, tiny_bundle)]
    from smartscope.cli import main

    with pytest.raises(ProtocolError, match="screening.interval_s"):
        main(["--debug", *argv])
    proc = _subprocess("--debug", *argv)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("argv", [
    ["train", "--labelled", "crops", "--out", "run", "--max-epochs", "0"],
    ["train", "--labelled", "crops", "--out", "run", "--steps-per-epoch", "0"],
    ["transfer", "--base", "models/hela_h2b_5class", "--labelled", "crops", "--out", "run",
     "--max-epochs", "0"],
    ["transfer", "--base", "models/hela_h2b_5class", "--labelled", "crops", "--out", "run",
     "--patience", "-1"],
])
def test_a_training_budget_of_nothing_is_refused_before_anything_runs(argv, tmp_path, capsys):
    """``--max-epochs 0`` made a bundle from an untrained head (transfer) with no warning."""
    from smartscope.cli import main

    assert main(argv) == 2
    assert "Invalid value for '--" in capsys.readouterr().err
