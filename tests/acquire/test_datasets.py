"""Where a run's images go: the hook (fed by hand, no microscope) writes each follow-up part into
an NDTiff data set of its own, dense, axes from 0, with the objective's pixel size and affine;
frames.csv, cells.csv and decisions.jsonl name the plane of every image."""

from __future__ import annotations

import csv
import json
import queue

import numpy as np
import pytest

from smartscope.acquire.datasets import stage_affine
from smartscope.acquire.repair import find_datasets, repair_run
from smartscope.decide import pixel_to_stage
from smartscope.protocol import CameraOrientation
from tests.acquire.test_hook import _cell, make_hook
from tests.run_images import dataset_summary, run_images

pytest.importorskip("ndstorage", reason="writing NDTiff data sets needs smartscope[mm]")

PROGRAM = [
    {"type": "centre_on_cell", "objective": "60x", "confirm": {"min_confidence": 0.5}},
    {"type": "set_channel", "preset": "DAPI"},
    {"type": "change_interval", "interval_s": 0.2, "min_frames": 3, "max_frames": 3,
     "extra_channels": [{"preset": "Brightfield"}]},
    {"type": "z_stack", "range_um": 2.0, "step_um": 1.0},
    {"type": "return_to_screening"},
]


def _classify(img, ps):
    """Metaphase in the second screening frame; the centred cell at 60x in the follow-up."""
    value = int(img[0, 0])
    if ps < 0.5:  # 60x: the cell sits at the image centre
        return [_cell("metaphase", y=127.5, x=127.5)]
    return [_cell("metaphase" if value == 1 else "interphase")]


def _drive(hook, pycromanager_saved):
    """The microscope: each event's image holds its number in every pixel (so a plane read
    back tells which image it is); what the hook hands back is 'saved' as pycromanager would."""
    q: queue.Queue = queue.Queue()
    q.put(hook.first_event())
    t, n = 0.0, 0
    while True:
        ev = q.get_nowait()
        if ev is None:
            break
        t = max(t + 0.1, ev.get("min_start_time", 0.0))
        md = {"Axes": ev["axes"], "ElapsedTime-ms": t * 1000, "PixelSize_um": 0.645}
        out = hook(np.full((256, 256), n, np.uint16), md, q)
        if out is not None:
            pycromanager_saved.append(out)
        n += 1
    return n


def test_followup_parts_are_dense_data_sets_with_their_pixel_size(tmp_path):
    hook = make_hook(tmp_path, _classify, PROGRAM, n_timepoints=3)
    saved: list = []
    n = _drive(hook, saved)
    hook.close(report=False)
    # pycromanager keeps the 3 screening images (10x, their metadata completed)
    assert len(saved) == 3 and all(set(md["Axes"]) == {"time", "position", "channel"}
                                   for _, md in saved)
    assert {md["PixelSize_um"] for _, md in saved} == {0.645}
    rel = [p.relative_to(tmp_path).as_posix() for p in find_datasets(tmp_path)]
    assert rel == ["followup_001/01_confirm", "followup_001/03_change_interval",
                   "followup_001/04_z_stack"]
    axes = {}
    for r in rel:
        summary, axes[r] = dataset_summary(tmp_path / r)
        assert summary["PixelSize_um"] == 0.1075 and summary["Objective"] == "60x"
        assert summary["Followup"] == 1
        assert summary["PixelSizeAffine"] == "0.1075;0.0;0.0;0.0;0.1075;0.0"
    assert axes["followup_001/01_confirm"] == {"time": [0], "channel": ["FITC"]}
    assert axes["followup_001/03_change_interval"] == {"time": [0, 1, 2],
                                                       "channel": ["Brightfield", "DAPI"]}
    assert axes["followup_001/04_z_stack"] == {"z": [0, 1, 2], "channel": ["DAPI"]}
    assert dataset_summary(tmp_path / "followup_001/04_z_stack")[0]["z-step_um"] == 1.0
    images = run_images(tmp_path, pixels=True)
    assert len(images) == n - 3 == 1 + 6 + 3  # dense: every plane of every array is an image
    for im in images:
        assert im.metadata["Axes"] == im.axes and im.metadata["PixelSize_um"] == 0.1075
    # every frames.csv row names its plane: the plane holds that image (its number)
    frames = list(csv.DictReader((tmp_path / "frames.csv").open()))
    assert len(frames) == n
    by_plane = {(im.dataset, json.dumps(im.axes, sort_keys=True)): im for im in images}
    for row in frames:
        if row["mode"] == "screen":
            assert row["dataset"] == "" and json.loads(row["axes"]) == saved[
                [md["SmartscopeFrame"] for _, md in saved].index(int(row["frame"]))][1]["Axes"]
            continue
        im = by_plane[(row["dataset"], row["axes"])]
        assert int(im.pixels[0, 0]) == int(row["frame"]) == im.metadata["SmartscopeFrame"]
    cells = list(csv.DictReader((tmp_path / "cells.csv").open()))
    follow_cells = [c for c in cells if c["mode"] == "follow"]
    assert follow_cells and all(int(by_plane[(c["dataset"], c["axes"])].pixels[0, 0])
                                == int(c["frame"]) for c in follow_cells)
    decisions = [json.loads(x) for x in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    confirmed = next(d for d in decisions if d["event"] == "confirmed")
    assert confirmed["image"] == {"dataset": "followup_001/01_confirm",
                                  "axes": {"time": 0, "channel": "FITC"}}


def test_a_followup_image_its_data_set_refuses_is_kept_by_pycromanager(tmp_path, monkeypatch):
    hook = make_hook(tmp_path, _classify, PROGRAM, n_timepoints=3)

    def full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(hook.layout, "write", full)
    saved: list = []
    n = _drive(hook, saved)
    hook.close(report=False)
    assert len(saved) == n  # nothing lost: pycromanager saves it under its event axes
    follow = [md for _, md in saved if "followup" in md["Axes"]]
    assert len(follow) == n - 3 and all(md["PixelSize_um"] == 0.1075 for md in follow)
    errors = [json.loads(x) for x in (tmp_path / "decisions.jsonl").read_text().splitlines()
              if '"error"' in x]
    assert errors and errors[0]["where"] == "save" and "No space" in errors[0]["error"]
    rows = list(csv.DictReader((tmp_path / "frames.csv").open()))
    assert all("followup" in json.loads(r["axes"]) for r in rows if r["mode"] == "follow")


def test_repair_rebuilds_a_followup_data_set_left_open(tmp_path):
    """A run killed during a follow-up: the data set being written has its images in its TIFF
    file but its index short (empty here); repair finds it under followup_<n>/ and lists every
    image the TIFF holds."""
    run = tmp_path / "run"
    hook = make_hook(run, _classify, PROGRAM, n_timepoints=3)
    n = _drive(hook, [])  # not closed: the z-stack's data set is still open, as at a SIGKILL
    stack = run / "followup_001" / "04_z_stack"
    (stack / "NDTiff.index").write_bytes(b"")
    (run / "run.json").write_text(json.dumps({"summary": {"status": "running"}}))
    assert dataset_summary(stack)[1] == {}
    report = repair_run(run)
    assert report.status_after == "killed" and len(report.datasets) == 3
    assert report.images == n - 3 and report.index_rebuilt
    assert dataset_summary(stack)[1] == {"z": [0, 1, 2], "channel": ["DAPI"]}
    # images 0, 1 and the last are screening (pycromanager's), the 10 between them follow-up
    assert [int(im.pixels[0, 0]) for im in run_images(run, pixels=True)] == list(range(2, n - 1))


@pytest.mark.parametrize("flip_x", [False, True])
@pytest.mark.parametrize("flip_y", [False, True])
@pytest.mark.parametrize("rotation_deg", [0, 90, 180, 270])
def test_the_affine_in_the_metadata_maps_pixels_as_the_hook_does(flip_x, flip_y, rotation_deg):
    o = CameraOrientation(flip_x=flip_x, flip_y=flip_y, rotation_deg=rotation_deg)
    a, b, c, d, e, f = stage_affine(0.25, None, flip_x, flip_y, rotation_deg)
    assert c == f == 0.0
    for dy, dx in [(0, 1), (1, 0), (3, -2)]:
        x, y = pixel_to_stage(127.5 + dy, 127.5 + dx, shape=(256, 256), pixel_size_um=0.25,
                              stage_x_um=0.0, stage_y_um=0.0, orientation=o)
        assert (x, y) == pytest.approx((a * dx + b * dy, d * dx + e * dy))
    assert stage_affine(0.25, (0.1, 0.2, 0.3, 0.4)) == (0.1, 0.2, 0.0, 0.3, 0.4, 0.0)
