"""Ctrl-C during ``smartscope train`` (second review): the whole run was thrown away, the
epochs trained so far lost, with no message. Now the first Ctrl-C (or SIGTERM) ends training
after the epoch in progress and the run is completed with the best epoch so far (exit 130, as
an interrupted ``run``); a second one abandons the run (its staging folder is removed as for
any failure). Real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_outputs_train import _synth

REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    labelled = tmp_path / "labelled"
    if not labelled.exists():
        _synth().write_labelled(labelled, 12, seed=0)
    log = out.with_suffix(".log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartscope", "train", "--labelled", str(labelled),
         "--supervised-only", "--size", "tiny", "--folds", "2", "--max-epochs", "500",
         "--min-epochs", "500", "--steps-per-epoch", "2", "--out", str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log.open("w"),
        stderr=subprocess.STDOUT)
    return proc, log


def _wait_for_epoch(proc: subprocess.Popen, log: Path, n: int) -> None:
    deadline = time.monotonic() + 120
    while f"epoch {n:3d}" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "training did not start in time"
        time.sleep(0.1)


@pytest.mark.slow
def test_ctrl_c_ends_training_after_the_epoch_and_keeps_the_best(tmp_path):
    out = tmp_path / "run"
    proc, log = _start(tmp_path, out)
    _wait_for_epoch(proc, log, 2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130, log.read_text()
    text = log.read_text()
    assert "interrupted (SIGINT) after epoch" in text and "Traceback" not in text, text
    card = json.loads((out / "bundle" / "model_card.json").read_text())
    assert card["training"]["stop_reason"].startswith("interrupted (SIGINT)")
    assert 2 <= card["training"]["epochs"] < 500
    assert "kfold" not in json.loads((out / "metrics.json").read_text())  # not trained

    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_second_signal_abandons_the_run():
    """EpochStop with real signals to this process (main thread): the first only asks to stop,
    the second raises KeyboardInterrupt; the handlers before come back."""
    from smartscope.train.interrupt import EpochStop

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), EpochStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop.requested == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before
