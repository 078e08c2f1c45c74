"""``smartscope run`` end to end on Micro-Manager's demo devices, headless (slow).

The demo configuration's real XY and Z stages, objective turret (pixel-size calibrations
10X 1.0, 20X 0.5, 40X 0.25 um/px) and Channel presets; the simulator's virtual-sample camera in
place of the demo camera, so the decision comes from the shipped classifier on HeLa nuclei.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.rig.conftest import REPO

pytestmark = pytest.mark.slow
PROTOCOL = REPO / "acquisitions" / "demo_headless.yaml"


def _protocol_for(mm_demo: Path, folder: Path, **microscope: object) -> Path:
    data = yaml.safe_load(PROTOCOL.read_text())
    data["microscope"].update(mm_dir=str(mm_demo), config_file=str(mm_demo / "MMConfig_demo.cfg"))
    data["microscope"].update(microscope)
    data["model"]["bundle"] = str((PROTOCOL.parent / data["model"]["bundle"]).resolve())
    path = folder / "demo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(protocol: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smartscope", "run", str(protocol), "--out",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def demo_run(mm_demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    out = folder / "run"
    proc = _run(_protocol_for(mm_demo, folder), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _images(out: Path) -> list[dict]:
    """Metadata of every image (screening and follow-up data sets), with its ``mode``."""
    from tests.run_images import run_images

    return [{**im.metadata, "mode": im.mode} for im in run_images(out)]


def test_the_demo_run_screens_triggers_zooms_stacks_and_returns(demo_run):
    run = json.loads((demo_run / "run.json").read_text())
    s = run["summary"]
    assert run["microscope"] == "headless" and s["status"] == "completed"
    assert s["triggers_fired"] == 1 and s["screening_frames"] == 5 and s["followup_frames"] >= 4
    # the calibrations came from Micro-Manager's pixel-size configurations
    cal = run["scope_info"]["pixel_to_stage"]
    assert cal["20X"]["pixel_size_config"] == "Res20x" and cal["40X"]["pixel_size_um"] == 0.25
    assert cal["40X"]["pixel_to_stage"] == "protocol_orientation"  # the demo's affine is default
    assert s["restored"] == {"objective": "20X", "channel": "FITC", "z_um": 0.0}

    decisions = [json.loads(x) for x in (demo_run / "decisions.jsonl").read_text().splitlines()]
    trig = next(d for d in decisions if d["event"] == "trigger")
    assert trig["cells"][0]["phase"] == "metaphase" and trig["target"]["objective"] == "40X"
    assert [d["event"] for d in decisions if d.get("followup") == 1][-1] == "return"

    images = _images(demo_run)
    follow = [m for m in images if m["mode"] == "follow"]
    assert follow
    for m in follow:  # the real turret's 40X calibration, the stage centred on the cell, DAPI
        assert m["PixelSize_um"] == 0.25 and m["PixelSizeAffine"] == "0.25;0.0;0.0;0.0;0.25;0.0"
        assert m["XPosition_um_Intended"] == pytest.approx(trig["target"]["x_um"], abs=1e-6)
        assert m["YPosition_um_Intended"] == pytest.approx(trig["target"]["y_um"], abs=1e-6)
        assert m["Axes"]["channel"] == "DAPI"
    # parfocal offset 40X - 20X = +1 um, then a 4 um stack in 2 um steps around it
    assert trig["target"]["z_um"] == pytest.approx(1.0)
    zs = sorted({round(m["ZPosition_um_Intended"], 3) for m in follow})
    assert zs == pytest.approx([-1.0, 1.0, 3.0])
    screen = [m for m in images if m["mode"] == "screen"]
    assert len(screen) == 5 and all(m["PixelSize_um"] == 0.5 for m in screen)
    # each data set's summary: its objective's pixel size (the screening objective is set
    # before the screening data set is created; the demo starts at another objective)
    from tests.run_images import dataset_summary

    assert dataset_summary(demo_run / "screening_1")[0]["PixelSize_um"] == 0.5
    for folder in s["followup_datasets"]:
        assert dataset_summary(demo_run / folder)[0]["PixelSize_um"] == 0.25
    assert all(m["Axes"]["channel"] == "FITC" and m["ZPosition_um_Intended"] == 0 for m in screen)
    after = [m for m in screen if m["ElapsedTime-ms"] > follow[-1]["ElapsedTime-ms"]]
    assert after, "screening did not resume after the follow-up"

    rows = list(csv.DictReader((demo_run / "cells.csv").open()))
    by_objective = {(r["objective"], float(r["pixel_size_um"])) for r in rows}
    assert by_objective == {("20X", 0.5), ("40X", 0.25)}  # each objective at its own pixel size


def test_a_real_microscope_without_stage_limits_does_not_start(tmp_path, capsys):
    from smartscope.cli import main

    data = yaml.safe_load(PROTOCOL.read_text())
    del data["microscope"]["stage_limits"]
    path = tmp_path / "nolimits.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "nolimits.yaml" in err and "stage limits on x, y and z" in err
    assert not (tmp_path / "run").exists()
