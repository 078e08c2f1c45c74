"""Faults during a simulated run, injected through the simulated devices (``scope.sim.faults``) or,
for a failing classifier, through a named fake. In every case: the images acquired so far are on
disk and readable, the NDTiff data set is closed, ``decisions.jsonl`` and ``cells.csv`` are
complete up to the fault, the run ends with a clear message, and ``on_error`` is honoured where it
applies (hook failures; a device failure always ends the run, as pycromanager aborts on it).

Ctrl-C / SIGTERM from outside is covered by ``tests/acquire/test_run_sim.py``; here a SIGTERM
arrives in the middle of a follow-up.
"""

from __future__ import annotations

import csv
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from smartscope.acquire import Run, RunSummary, connect
from smartscope.acquire.repair import find_datasets
from smartscope.classify import Cell
from smartscope.errors import MicroscopeError
from smartscope.protocol import Protocol, parse_protocol

from .conftest import base_protocol

PHASES = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")
STALL_S = 3.0


class InjectedClassifierFault(RuntimeError):
    """Raised by ``FakeClassifierWithFaults``: no real model fails like this on demand."""


class FakeClassifierWithFaults:
    """A FAKE classifier (a fault that cannot be produced with a real model): every call finds
    one metaphase nucleus near the image centre, except the calls listed in ``raise_at``, which
    raise; ``before`` maps a call number to a function run first (e.g. to arm a device fault at
    a known point of the run, before the hook queues the next event)."""

    classes = PHASES
    card = None

    def __init__(self, raise_at: tuple[int, ...] = (),
                 before: dict[int, Callable[[], object]] | None = None) -> None:
        self.raise_at = set(raise_at)
        self.before = dict(before or {})
        self.calls = 0
        self.succeeded = 0
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, image: np.ndarray, pixel_size_um: float) -> list[Cell]:
        self.calls += 1
        if self.calls in self.before:
            self.before[self.calls]()
        if self.calls in self.raise_at:
            raise InjectedClassifierFault(f"injected failure on call {self.calls}")
        self.succeeded += 1
        h, w = image.shape[-2:]
        self.shapes.append((h, w))
        probs = dict(zip(self.classes, (0.0, 0.0, 0.99, 0.01, 0.0), strict=True))
        return [Cell(y=h / 2 + 5.0, x=w / 2 + 7.0, phase="metaphase", confidence=0.99,
                     area_um2=120.0, probabilities=probs)]


def _protocol(on_error: str = "continue", actions: list | None = None, n: int = 4) -> Protocol:
    data = base_protocol("unused", n_timepoints=n)
    data["on_error"] = on_error
    if actions is not None:
        data["triggers"][0]["actions"] = actions
    return parse_protocol(data, "faults.yaml")


def _run(protocol: Protocol, out: Path, fake: object, *, arm: Callable | None = None,
         classify: object = None) -> tuple[RunSummary | None, BaseException | None, Run]:
    """Run on the simulator; ``arm(faults)`` before the acquisition starts."""
    with connect(protocol, simulate=True) as scope:
        if arm is not None:
            arm(scope.sim.faults)
        run = Run(protocol, out, scope=scope, classifier=fake,
                  classify=fake if classify is None else classify, stall_timeout_s=STALL_S)
        try:
            return run.execute(), None, run
        except MicroscopeError as e:
            return None, e, run


# --- what must hold after any fault -------------------------------------------------------------


def _dataset_images(out: Path) -> list[tuple[dict, np.ndarray]]:
    """Every image of the run's NDTiff data sets (screening and follow-ups), opened with
    ndstorage (pycromanager's reader)."""
    from ndstorage import Dataset

    folders = find_datasets(out)
    assert folders and folders[0].name.startswith("screening")
    images = []
    for folder in folders:
        ds = Dataset(str(folder))
        try:
            images += [(axes, np.asarray(ds.read_image(**axes)))
                       for axes in ds.get_image_coordinates_list()]
        finally:
            ds.close()
    return images


def _closed_tiff_pages(out: Path) -> int:
    """Images in the data sets' TIFF files, read as plain TIFF: a file left open by a crashed
    writer has no terminated page chain (it is preallocated), so this also proves it was closed."""
    pages = 0
    for folder in find_datasets(out):
        for f in sorted(folder.glob("*.tif")):
            with tifffile.TiffFile(f) as tif:
                pages += len(tif.pages)
    return pages


def _decisions(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]


def _cells(out: Path) -> list[dict]:
    with (out / "cells.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def check_outputs(out: Path, fake: FakeClassifierWithFaults | None, status: str) -> dict:
    """The invariants of every run, whatever ended it; returns run.json."""
    run = json.loads((out / "run.json").read_text())
    summary = run["summary"]
    assert summary["status"] == status
    images = _dataset_images(out)
    assert len(images) == summary["frames"], "an image the hook saw is missing on disk"
    assert _closed_tiff_pages(out) == len(images)
    for _, img in images:
        assert img.ndim == 2 and img.size and img.dtype == np.uint16
    decisions = _decisions(out)  # every line parses: nothing torn
    assert all("event" in d for d in decisions)
    rows = _cells(out)
    if fake is not None:  # one row per successful classification, none lost
        assert len(rows) == fake.succeeded
    frames = sorted({int(r["frame"]) for r in rows})
    assert all(0 <= f < summary["frames"] for f in frames)
    return run


# --- hook failures: on_error honoured -----------------------------------------------------------


def test_classifier_raises_on_error_continue(tmp_path):
    fake = FakeClassifierWithFaults(raise_at=(2,))
    summary, err, _ = _run(_protocol("continue"), tmp_path / "run", fake)
    assert err is None and summary.status == "completed" and summary.errors == 1
    run = check_outputs(tmp_path / "run", fake, "completed")
    assert run["summary"]["screening_frames"] == 4  # screening went on after the failure
    errors = [d for d in _decisions(tmp_path / "run") if d["event"] == "error"]
    assert len(errors) == 1 and errors[0]["where"] == "classify"
    assert "InjectedClassifierFault" in errors[0]["error"] and errors[0]["on_error"] == "continue"
    assert fake.calls > 2 and _decisions(tmp_path / "run")[-1]["event"] == "screening_done"


def test_classifier_raises_on_error_stop(tmp_path):
    fake = FakeClassifierWithFaults(raise_at=(2,))
    summary, err, _ = _run(_protocol("stop"), tmp_path / "run", fake)
    assert err is None and summary.errors == 1 and summary.status == "stopped_on_error"
    run = check_outputs(tmp_path / "run", fake, "stopped_on_error")
    assert fake.calls == 2, "the run went on classifying after a failure with on_error: stop"
    decisions = _decisions(tmp_path / "run")
    errors = [d for d in decisions if d["event"] == "error"]
    assert errors[-1]["on_error"] == "stop"
    assert decisions[-1]["event"] == "stop" and "on_error" in decisions[-1]["reason"]
    assert run["summary"]["screening_frames"] < 4


# --- device failures: the run ends with a clear message, everything so far kept ----------------


DEVICE_FAULTS = {
    # name: (arm(faults), classifier call before which it is armed, words of the message)
    # the device's own words, read from the engine at once (not after the stall timeout)
    "camera_timeout": (lambda f: f.camera_timeout(count=None), 3, "timed out waiting for the"),
    "objective_stuck": (lambda f: f.objective_stuck(), 1, "did not reach its position"),
    "xy_stage_refuses": (lambda f: f.xy_stage_refuses(), 1, "did not reach its position"),
    "z_stage_refuses": (lambda f: f.z_stage_refuses(), 1, "did not reach its position"),
}


@pytest.mark.parametrize(("fault", "on_error"), [
    *[(name, "continue") for name in DEVICE_FAULTS],
    ("camera_timeout", "stop"),  # on_error does not change what a device failure does
])
def test_device_fault_ends_the_run_cleanly(tmp_path, fault, on_error):
    arm, at_call, words = DEVICE_FAULTS[fault]
    holder: dict = {}
    fake = FakeClassifierWithFaults(before={at_call: lambda: arm(holder["faults"])})
    summary, err, run = _run(_protocol(on_error), tmp_path / "run", fake,
                             arm=lambda f: holder.setdefault("faults", f))
    assert summary is None and err is not None
    msg = str(err)
    assert "\n" not in msg and words in msg and "saved in" in msg and "check the device" in msg
    out = tmp_path / "run"
    result = check_outputs(out, fake, "failed")
    # each time point is 1 classified screening frame + a 2-frame burst at the centred cell: the
    # fault, armed before call ``at_call``, hits the frame after it; all frames before are kept
    assert result["summary"]["frames"] == 3 * (at_call - 1) + 1
    assert result["summary"]["error"].startswith("MicroscopeError")
    last = _decisions(out)[-1]
    assert last["event"] == "error" and last["where"] == "microscope" and words in last["error"]


def test_a_camera_that_stops_answering_ends_the_run_after_the_stall_timeout(tmp_path):
    """A snap that blocks without an error (a hung driver): no engine error to read, so the
    watchdog ends the run STALL_S after the camera step, naming the frame."""
    holder: dict = {}
    fake = FakeClassifierWithFaults(before={3: lambda: holder["faults"].camera_hangs(STALL_S * 2)})
    summary, err, run = _run(_protocol("continue"), tmp_path / "run", fake,
                             arm=lambda f: holder.setdefault("faults", f))
    assert summary is None and err is not None
    msg = str(err)
    assert "camera did not deliver the image" in msg and f"within {STALL_S:g} s" in msg
    assert "saved in" in msg and "\n" not in msg
    result = check_outputs(tmp_path / "run", fake, "failed")
    assert result["summary"]["frames"] >= 3 * (3 - 1) + 1  # everything before the hang is kept
    last = _decisions(tmp_path / "run")[-1]
    assert last["event"] == "error" and last["where"] == "microscope"


def test_wrong_sized_image_is_saved_and_classified_as_it_is(tmp_path, tiny_bundle):
    """The camera returns one image of the wrong size: it is saved with its own shape, the real
    detection + LiteRT path classifies it, and cell coordinates stay inside it."""
    from smartscope.classify import Classifier

    clf = Classifier(tiny_bundle)
    proto = _protocol("continue", n=3)
    seen: list[tuple[int, int]] = []

    def classify(image, ps):
        from smartscope.acquire.hook import frame_classifier

        seen.append(image.shape)
        return frame_classifier(clf, proto.detection.diameter_um)(image, ps)

    summary, err, _ = _run(proto, tmp_path / "run", clf, classify=classify,
                           arm=lambda f: f.wrong_image_size((200, 150), count=1))
    assert err is None and summary.status == "completed" and summary.errors == 0
    check_outputs(tmp_path / "run", None, "completed")
    shapes = sorted(img.shape for _, img in _dataset_images(tmp_path / "run"))
    assert (200, 150) in shapes and (256, 256) in shapes and seen[0] == (200, 150)
    for row in _cells(tmp_path / "run"):
        limit = (200, 150) if row["frame"] == "0" else (256, 256)
        assert 0 <= float(row["y"]) < limit[0] and 0 <= float(row["x"]) < limit[1]


def test_sigterm_during_a_followup_keeps_everything(tmp_path):
    """SIGTERM arrives while a follow-up (centre + burst) is running, from the hook's thread."""
    fake = FakeClassifierWithFaults(before={3: lambda: os.kill(os.getpid(), signal.SIGTERM)})
    summary, err, _ = _run(_protocol("continue", n=20), tmp_path / "run", fake)
    assert err is None and summary.status == "interrupted"
    run = check_outputs(tmp_path / "run", fake, "interrupted")
    assert 3 <= run["summary"]["frames"] < 60
    assert _decisions(tmp_path / "run")[-1]["event"] == "interrupted"
