"""End-to-end runs on the simulated microscope with the shipped model (slow)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def _images(out: Path) -> list[tuple[dict, dict]]:
    """(axes, metadata) of every image in the run's data set, in acquisition order."""
    from ndstorage import Dataset

    (ds_dir,) = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("images")]
    ds = Dataset(str(ds_dir))
    try:
        items = [(axes, ds.read_metadata(**axes)) for axes in ds.get_image_coordinates_list()]
    finally:
        ds.close()
    return sorted(items, key=lambda am: am[1]["ElapsedTime-ms"])


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
    pixel = {axes["mode"]: md["PixelSize_um"] for axes, md in images}
    assert pixel["screen"] == pytest.approx(0.645) and pixel["follow"] == pytest.approx(0.1075)
    t = [md["ElapsedTime-ms"] / 1000 for _, md in images]
    modes = [axes["mode"] for axes, _ in images]
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
    assert _images(out)


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
    rows = (out / "cells.csv").read_text().splitlines()
    assert len(rows) > 1 and len({len(r.split(",")) for r in rows}) == 1  # no torn line
    assert int(rows[-1].split(",")[0]) < run["summary"]["frames"]
