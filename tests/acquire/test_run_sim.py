"""End-to-end runs on the simulated microscope with the shipped model (slow)."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.run_images import dataset_summary, run_images

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "models" / "hela_h2b_5class"
ACQ = REPO / "acquisitions"

pytestmark = pytest.mark.slow

_NO_TF_RUN = """
import sys
from smartscope.cli import main
rc = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")
                or m == "keras" or m.startswith("keras."))
assert not loaded, f"TensorFlow imported during a run: {loaded[:5]}"
sys.exit(rc)
"""


def _cli_run(protocol: Path, out: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-c", _NO_TF_RUN, "run", str(protocol), "--simulate", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env,
    )


def _images(out: Path) -> list[tuple[str, dict]]:
    """(mode, metadata) of every image in the run's data sets, in acquisition order."""
    return [(im.mode, im.metadata) for im in run_images(out)]


def _decisions(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]


def _without_confirm(folder: Path) -> Path:
    """mitosis_zoom.yaml without its confirm step: these tests check the switching mechanics,
    which must not depend on whether the model confirms the cell at 60x (the event-capture
    benchmark measures that)."""
    import yaml

    data = yaml.safe_load((ACQ / "mitosis_zoom.yaml").read_text())
    data["model"]["bundle"] = str((ACQ / data["model"]["bundle"]).resolve())
    for action in data["triggers"][0]["actions"]:
        action.pop("confirm", None)
    path = folder / "mitosis_zoom.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def mitosis_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mitosis")
    out = folder / "run"
    proc = _cli_run(_without_confirm(folder), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_mitosis_zoom_cli_ends_with_all_outputs(mitosis_run):
    out, proc = mitosis_run
    assert "completed:" in proc.stdout
    assert "frames" in proc.stderr and "triggers fired" in proc.stderr  # progress lines
    for name in ("cells.csv", "decisions.jsonl", "run.json"):
        assert (out / name).is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["status"] == "completed"
    assert run["model"]["card_sha256"] and run["packages"]["pycromanager"]
    assert run["protocol"]["screening"]["objective"] == "10x"
    header = (out / "cells.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["frame", "time_s", "position", "mode", "followup", "objective",
                          "channel"]
    assert {"y", "x", "phase", "confidence", "track", "parent_track"} <= set(header)
    # a simulated run scores its triggers against the simulator's truth, prints and records it
    assert "event capture [metaphase_zoom]" in proc.stdout
    capture = run["summary"]["event_capture"]["metaphase_zoom"]
    assert capture["episodes"] >= 1 and capture["triggers"] == run["summary"]["triggers_fired"]
    assert {"precision", "recall", "wrong_light_ms", "wrong_time_s"} <= set(capture)


def test_mitosis_zoom_report_renders_in_chromium(mitosis_run, tmp_path):
    """The run's own report.html, in a real browser: no errors, every image decodes, every
    trigger of decisions.jsonl is on the page; the progress line named the trigger."""
    from tests.report.chromium import render, require_chromium

    out, proc = mitosis_run
    assert "last: trigger metaphase_zoom at " in proc.stderr
    assert f"report: {out / 'report.html'}" in proc.stdout
    browser = require_chromium()
    shown = render(out / "report.html", browser, tmp_path / "profile")
    assert shown.errors == 0 and shown.images == shown.images_loaded >= 4
    frames = [int(f) for f in re.findall(r'class="trigger" id="trigger-\d+" data-frame="(\d+)"',
                                         shown.dom)]
    assert frames and frames == [d["frame"] for d in _decisions(out) if d["event"] == "trigger"]


def test_mitosis_zoom_switches_objective_and_fast_interval(mitosis_run):
    out, _ = mitosis_run
    decisions = _decisions(out)
    triggers = [d for d in decisions if d["event"] == "trigger"]
    assert triggers, "no trigger fired"
    assert triggers[0]["target"]["objective"] == "60x" and triggers[0]["refused"] is None
    images = _images(out)
    pixel = {mode: md["PixelSize_um"] for mode, md in images}
    assert pixel["screen"] == pytest.approx(0.645) and pixel["follow"] == pytest.approx(0.1075)
    t = [md["ElapsedTime-ms"] / 1000 for _, md in images]
    modes = [mode for mode, _ in images]
    first_follow = modes.index("follow")
    end_follow = first_follow + modes[first_follow:].index("screen")  # back to screening
    # screening interval before, fast during the follow-up time-lapse, screening interval after
    pairs = [(i, t[i + 1] - t[i]) for i in range(len(t) - 1)
             if modes[i] == modes[i + 1] == "screen"]
    before = [dt for i, dt in pairs if i < first_follow]
    after = [dt for i, dt in pairs if i >= end_follow]
    fast = np.diff(t[first_follow:first_follow + 4])  # min_frames: 4 time-lapse frames first
    assert len(fast) >= 3 and np.median(fast) < 0.8
    if before:
        assert np.median(before) == pytest.approx(2.0, abs=0.3)
    assert len(after) >= 2 and np.median(after) == pytest.approx(2.0, abs=0.3)
    assert np.median(fast) < 0.5 * np.median(after)
    lat = [d["latency_ms"] for d in decisions]
    assert max(lat) < 2000


def test_screening_and_followups_are_separate_dense_data_sets(mitosis_run):
    """Screening at 10x in pycromanager's data set; each follow-up's time-lapse and z-stack in
    data sets of their own at 60x: axes from 0, every plane an image, the pixel size in the
    summary and in every image; every cells.csv / frames.csv row names the plane of its image
    (read back: the image's frame number and time are the row's)."""
    from smartscope.acquire.repair import find_datasets

    out, _ = mitosis_run
    summary = json.loads((out / "run.json").read_text())["summary"]
    rel = [p.relative_to(out).as_posix() for p in find_datasets(out)]
    assert rel[0] == "screening_1" and rel[1:] == summary["followup_datasets"]
    parts = {(r.split("/")[0], r.split("/")[1]) for r in rel[1:]}
    for n in range(1, summary["triggers_fired"] + 1):  # mitosis_zoom.yaml, without its confirm
        assert (f"followup_{n:03d}", "03_change_interval") in parts
    assert {p for _, p in parts} <= {"03_change_interval", "04_z_stack"}
    images = run_images(out)
    assert len(images) == summary["frames"]
    for r in rel:
        meta, axes = dataset_summary(out / r)
        ps = 0.645 if r == "screening_1" else 0.1075
        assert meta["PixelSize_um"] == pytest.approx(ps)
        mine = [im for im in images if im.dataset == r]
        assert len(mine) == int(np.prod([len(v) for v in axes.values()]))  # dense
        for name, values in axes.items():
            if name != "channel":
                assert values == list(range(len(values)))  # from 0
        expected = ({"time", "position", "channel"} if r == "screening_1" else
                    {"z", "channel"} if r.endswith("z_stack") else {"time", "channel"})
        assert set(axes) == expected
        if r.endswith("z_stack"):
            assert meta["z-step_um"] == pytest.approx(1.5) and len(axes["z"]) == 5
        for im in mine:
            assert im.metadata["PixelSize_um"] == pytest.approx(ps)
            assert im.metadata["PixelSizeAffine"] == f"{ps!r};0.0;0.0;0.0;{ps!r};0.0"
    by_plane = {(im.dataset, json.dumps(im.axes, sort_keys=True)): im for im in images}
    for name in ("frames.csv", "cells.csv"):
        with (out / name).open() as fh:
            rows = list(csv.DictReader(fh))
        assert rows
        for row in rows:
            im = by_plane[(row["dataset"], row["axes"])]
            assert im.metadata["SmartscopeFrame"] == int(row["frame"])
            assert im.metadata["ElapsedTime-ms"] / 1000 == pytest.approx(float(row["time_s"]),
                                                                         abs=1e-3)


def test_report_tiff_stacks_carry_each_data_sets_calibration(mitosis_run):
    """`report --tiff`: a calibrated ImageJ stack per screening position and follow-up data set,
    as Fiji and tifffile read them (pixel size, z step, frame interval)."""
    import tifffile

    from smartscope.report.export import export_tiffs

    out, _ = mitosis_run
    stacks = {s.path.name: s for s in export_tiffs(out)}
    assert "screening_0.tif" in stacks and "followup_001_03_change_interval.tif" in stacks
    for name, stack in stacks.items():
        with tifffile.TiffFile(stack.path) as tif:
            assert tif.is_imagej and tif.imagej_metadata["unit"] == "um"
            num, den = tif.pages[0].tags["XResolution"].value
            ps = 0.645 if name.startswith("screening") else 0.1075
            assert den / num == pytest.approx(ps, rel=1e-4)
            if name.endswith("z_stack.tif"):
                assert tif.imagej_metadata["spacing"] == pytest.approx(1.5)
            elif name.endswith("change_interval.tif"):
                assert tif.imagej_metadata["finterval"] == pytest.approx(0.5, abs=0.15)


_IJ_MACRO = """
dir = getArgument();
list = getFileList(dir);
for (i = 0; i < list.length; i++) {
  if (!endsWith(list[i], ".tif")) continue;
  open(dir + list[i]);
  getDimensions(w, h, c, z, t);
  getVoxelSize(pw, ph, pd, unit);
  print("STACK " + list[i] + " " + w + " " + h + " " + c + " " + z + " " + t + " " + pw + " "
        + pd + " " + Stack.getFrameInterval());
  close();
}
"""


def test_imagej_opens_the_tiff_stacks_with_their_calibration(mitosis_run, tmp_path):
    """Real ImageJ (the reader Fiji's File > Open uses for TIFF) opens each stack of
    `report --tiff` with its pixel size, z step and frame interval."""
    import shutil

    from smartscope.report.export import export_tiffs

    jar = Path(os.environ.get("SMARTSCOPE_IJ_JAR", "/usr/share/java/ij.jar"))
    if not jar.is_file() or shutil.which("java") is None or shutil.which("xvfb-run") is None:
        pytest.skip("needs ImageJ and a virtual display: apt-get install libij-java xvfb (or set "
                    "SMARTSCOPE_IJ_JAR to an ij.jar), as .ci/run does")
    out, _ = mitosis_run
    stacks = {s.path.name: s for s in export_tiffs(out)}
    macro = tmp_path / "calibration.ijm"
    macro.write_text(_IJ_MACRO)
    proc = subprocess.run(["xvfb-run", "-a", "java", "-jar", str(jar), "-batch", str(macro),
                           f"{out / 'tiff'}/"], capture_output=True, text=True, timeout=120)
    seen = {}
    for line in proc.stdout.splitlines():
        if line.startswith("STACK "):
            name, *values = line.split()[1:]
            seen[name] = [float(v) for v in values]
    assert set(seen) == set(stacks), proc.stdout + proc.stderr
    for name, (w, h, c, z, t, pixel_um, z_um, interval_s) in seen.items():
        shape = stacks[name].shape  # T, Z, C, Y, X
        assert (t, z, c, h, w) == shape
        assert pixel_um == pytest.approx(0.645 if name.startswith("screening") else 0.1075,
                                         rel=1e-4)
        if name.endswith("z_stack.tif"):
            assert z_um == pytest.approx(1.5)
        if t > 1:
            assert interval_s == pytest.approx(stacks[name].interval_s, rel=1e-3)


def test_triggering_cell_is_centred_at_60x(tmp_path):
    """Ground truth: the first 60x frame has the triggering cell within 5 um of its centre."""
    from smartscope.acquire import Run, connect
    from smartscope.protocol import load_protocol

    proto = load_protocol(ACQ / "mitosis_zoom.yaml")
    data = proto.model_dump(mode="json")
    data["triggers"][0]["actions"][-1] = {"type": "stop"}  # end after the first follow-up
    data["triggers"][0]["actions"][0].pop("confirm", None)  # centring, whatever the model says
    proto = type(proto).model_validate(data)
    seen: list[tuple] = []
    with connect(proto, simulate=True) as scope:

        def observe(frame):
            seen.append((frame, scope.sim.truth()))

        summary = Run(proto, tmp_path / "run", scope=scope, observers=[observe]).execute()
    assert summary.status == "completed" and summary.triggers_fired == 1
    trig = next(d for d in _decisions(tmp_path / "run") if d["event"] == "trigger")
    trig_frame, trig_truth = next((f, tr) for f, tr in seen if f.index == trig["frame"])
    tx, ty = trig["target"]["x_um"], trig["target"]["y_um"]
    cell = min(trig_truth, key=lambda c: (c.x_um - tx) ** 2 + (c.y_um - ty) ** 2)
    # the triggering cell: the true cell under the detection (within a nucleus radius)
    assert np.hypot(cell.x_um - tx, cell.y_um - ty) < 8.0, "detection far from any true cell"
    zoom_frame, zoom_truth = next((f, tr) for f, tr in seen if f.request.objective == "60x")
    assert zoom_frame.index == trig["frame"] + 1
    now = next(c for c in zoom_truth if c.id == cell.id)
    centre = (zoom_frame.request.x_um, zoom_frame.request.y_um)
    assert np.hypot(now.x_um - centre[0], now.y_um - centre[1]) < 5.0


@pytest.mark.parametrize("name", ["anaphase_burst.yaml", "modality_switch.yaml"])
def test_example_protocols_run(tmp_path, name):
    out = tmp_path / "run"
    proc = _cli_run(ACQ / name, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["status"] == "completed"
    assert run["summary"]["duration_s"] < 180
    images = run_images(out)
    assert len(images) == run["summary"]["frames"]
    from smartscope.acquire.repair import find_datasets

    for folder in find_datasets(out):  # every data set dense (extra channels, bursts too)
        _, axes = dataset_summary(folder)
        rel = folder.relative_to(out).as_posix()
        assert sum(im.dataset == rel for im in images) == np.prod([len(v) for v in axes.values()])


@pytest.mark.parametrize("script", ["hook_from_protocol.py", "hook_from_objects.py"])
def test_examples_run(tmp_path, script):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), "--out", str(out), "--timepoints", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "frames" in proc.stdout
    assert (out / "cells.csv").is_file() and (out / "decisions.jsonl").is_file()
    assert len(_images(out)) >= 5
    with (out / "frames.csv").open() as fh:  # the script told the hook its screening data set
        rows = list(csv.DictReader(fh))
    assert {r["dataset"] for r in rows if r["mode"] == "screen"} == {"screening_1"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_ends_cleanly(tmp_path, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartscope", "run", str(ACQ / "mitosis_zoom.yaml"), "--simulate",
         "--out", str(out), "--progress-every", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = []
    for line in proc.stdout:  # wait until a few frames are in
        lines.append(line)
        if "frames 4 " in line:
            break
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + rest
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["status"] == "interrupted"
    images = _images(out)
    assert len(images) == run["summary"]["frames"] >= 4
    assert _decisions(out)[-1]["event"] == "interrupted"
    assert "interrupted" in (out / "report.html").read_text()  # the report is written too
    with (out / "cells.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) > 1 and len({len(r) for r in rows}) == 1  # no torn line
    assert int(rows[-1][0]) < run["summary"]["frames"]
