"""Protocols on the replay microscope: the protocol section, the --replay shortcut, ground
truth, scoring, and runs through pycromanager on a synthetic and on the real HeLa movie."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from smartscope.errors import ProtocolError, RecordingError
from smartscope.protocol import ReplayMicroscope, parse_protocol

REPO = Path(__file__).resolve().parents[2]
ACQ = REPO / "acquisitions"
HELA = REPO.parent / "shared" / "data" / "hela" / "Fluo_Hela_02_img.tif"
CELLCOG = REPO.parent / "shared" / "data" / "cellcognition_h2b" / "frames"
LABELS = REPO / "data" / "hela_phases" / "labels.csv"

T, H, W, PIXEL_UM, DT_S = 5, 128, 160, 0.645, 1800.0
#: known nuclei: (row, col) per frame; nucleus A moves +4 px in x per frame
A = [(40, 40 + 4 * t) for t in range(T)]
B = (90, 110)


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:H, 0:W]
    frames = []
    for t in range(T):
        img = 500 + 3 * rng.standard_normal((H, W))
        for r, c in (A[t], B):
            img += 800 * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 6.0**2))
        frames.append(np.rint(img).astype(np.uint16))
    path = tmp_path_factory.mktemp("replay") / "movie.tif"
    tifffile.imwrite(path, np.stack(frames))
    return path


@pytest.fixture(scope="module")
def labels(movie) -> Path:
    """A in metaphase in frames 1-2 (one episode), B interphase throughout."""
    rows = ["frame,y,x,phase"]
    for t in range(T):
        rows.append(f"{t},{A[t][0]},{A[t][1]},{'metaphase' if t in (1, 2) else 'interphase'}")
        rows.append(f"{t},{B[0]},{B[1]},interphase")
    path = movie.parent / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _protocol(microscope: dict, **screening) -> object:
    data = yaml.safe_load((ACQ / "mitosis_zoom.yaml").read_text())
    data["microscope"] = {"objectives": data["microscope"]["objectives"], **microscope}
    data["screening"].update(screening)
    return parse_protocol(data, "p.yaml", base_dir=ACQ)


# --- protocol ------------------------------------------------------------------------------


def test_replay_section_and_default_time_scale(movie):
    from smartscope.acquire.replay import replay_config_for

    proto = _protocol({"type": "replay", "movie": str(movie), "pixel_size_um": PIXEL_UM,
                       "frame_interval_s": DT_S, "sensor_px": 64})
    m = proto.microscope
    assert isinstance(m, ReplayMicroscope) and m.sensor_px == (64, 64)
    cfg = replay_config_for(proto)
    # each screening time point (2 s) shows the next recorded frame (1800 s)
    assert cfg.time_scale == pytest.approx(DT_S / 2.0)
    assert cfg.objective == "10x" and {"10x", "60x"} <= set(cfg.objectives)
    assert cfg.objectives["60x"].pixel_size_um == pytest.approx(PIXEL_UM / 6)
    assert cfg.objectives["60x"].parfocal_z_offset_um == 3.0  # the protocol's parfocal offset


def test_missing_pixel_size_is_a_one_line_error(movie):
    with pytest.raises(ProtocolError) as e:
        _protocol({"type": "replay", "movie": str(movie), "frame_interval_s": DT_S})
    msg = str(e.value)
    assert "microscope" in msg and "pixel_size_um is missing" in msg and "\n" not in msg


def test_replay_shortcut_keeps_the_rest_of_the_protocol(movie):
    from smartscope.acquire.replay import with_replay
    from smartscope.protocol import load_protocol

    proto = load_protocol(ACQ / "mitosis_zoom.yaml")
    out = with_replay(proto, movie, pixel_size_um=PIXEL_UM, frame_interval_s=DT_S)
    assert isinstance(out.microscope, ReplayMicroscope)
    assert out.microscope.objectives == proto.microscope.objectives
    assert out.triggers == proto.triggers and out.screening == proto.screening
    with pytest.raises(ProtocolError, match="pixel_size_um is missing"):
        with_replay(proto, movie, frame_interval_s=DT_S)


# --- ground truth and scoring --------------------------------------------------------------


def test_labels_outside_the_movie_are_refused(tmp_path):
    from smartscope.sim.replay import read_labels

    bad = tmp_path / "l.csv"
    bad.write_text("frame,y,x,phase\n0,10,10,interphase\n7,10,10,metaphase\n")
    with pytest.raises(RecordingError, match="line 3: frame 7 is outside the movie"):
        read_labels(bad, T, (H, W))
    bad.write_text("frame,y,x,phase\n0,10,300,interphase\n")
    with pytest.raises(RecordingError, match=r"line 2: \(y, x\) = \(10, 300\) px is outside"):
        read_labels(bad, T, (H, W))
    bad.write_text("frame,row,col,phase\n")
    with pytest.raises(RecordingError, match="columns y, x are missing"):
        read_labels(bad, T, (H, W))


def _truth(labels, offset_s=0.0):
    """The labels as a TruthProvider for a run whose sample time is 900 x run time + offset."""
    from smartscope.sim.replay import RecordedTruth, read_labels
    from smartscope.sim.truth import TimeMap

    rec = RecordedTruth(read_labels(labels, T, (H, W)), n_frames=T, shape=(H, W),
                        pixel_size_um=PIXEL_UM, frame_interval_s=DT_S)
    return rec.provider(TimeMap(offset_s, 900.0), T * DT_S, match_um=5.0)


def _stage(rc):
    return ((rc[1] - (W - 1) / 2) * PIXEL_UM, (rc[0] - (H - 1) / 2) * PIXEL_UM)


def test_truth_is_the_labelled_frame_shown_at_a_run_time(labels):
    truth = _truth(labels)  # frame k is shown from run time 2k s
    x, y = _stage(A[1])
    assert truth.cell_at(x, y, 2.4).phase == "metaphase"
    assert truth.cell_at(x, y, 1.9).phase == "interphase"  # frame 0: A 2.6 um to the left
    assert truth.cell_at(0.0, 0.0, 0.0) is None  # no nucleus labelled there
    shifted = _truth(labels, offset_s=-900.0)  # sample time 0 at run time 1 s
    assert shifted.cell_at(x, y, 2.4).phase == "interphase"
    assert shifted.cell_at(x, y, 3.1).phase == "metaphase"


def test_event_capture_of_a_replay_against_its_labels(labels):
    """Issue 13's scorer on the replay's truth: one right and one wrong trigger, the one
    metaphase episode (frames 1-2 = run seconds 2-6) caught."""
    from smartscope.decide.capture import ScreenedField, score_run

    truth = _truth(labels)
    fields = [ScreenedField("here", 0.0, 0.0, W * PIXEL_UM, H * PIXEL_UM)]
    (ep,) = truth.episodes({"metaphase"}, fields, 0.0, 10.0)
    assert (ep.start_s, ep.end_s) == (2.0, 6.0)

    def trig(fid, t, rc):
        x, y = _stage(rc)
        return [{"event": "trigger", "followup": fid, "trigger": "m", "time_s": t,
                 "cell": {"x_um": x, "y_um": y}},
                {"event": "return", "followup": fid, "trigger": "m", "time_s": t + 1}]

    decisions = trig(1, 2.1, A[1]) + trig(2, 4.1, B)
    s = score_run(decisions, {"m": ("metaphase",)}, truth, fields, 0.0, 10.0)["m"]
    assert (s.triggers, s.right, s.episodes, s.caught) == (2, 1, 1, 1)
    s = score_run(trig(2, 4.1, B), {"m": ("metaphase",)}, truth, fields, 0.0, 10.0)["m"]
    assert (s.precision, s.recall) == (0.0, 0.0)


def test_looping_recording_repeats_its_labels(labels):
    from smartscope.sim.replay import RecordedTruth, read_labels

    rec = RecordedTruth(read_labels(labels, T, (H, W)), n_frames=T, shape=(H, W),
                        pixel_size_um=PIXEL_UM, frame_interval_s=DT_S, loop=True)
    rows = rec.rows(until_sample_s=2.5 * T * DT_S)
    assert len(rows) == 3 * len(rec.labels)
    assert max(t for t, *_ in rows) == (3 * T - 1) * DT_S


# --- runs ----------------------------------------------------------------------------------


def _images(out: Path) -> list[tuple[str, dict, np.ndarray]]:
    """(mode, metadata, pixels) of every image of the run's data sets, in time order."""
    from ndstorage import Dataset

    from smartscope.acquire.repair import find_datasets

    items = []
    for ds_dir in find_datasets(out):
        mode = "follow" if ds_dir.relative_to(out).parts[0].startswith("followup_") else "screen"
        ds = Dataset(str(ds_dir))
        try:
            items += [(mode, ds.read_metadata(**a), np.asarray(ds.read_image(**a)))
                      for a in ds.get_image_coordinates_list()]
        finally:
            ds.close()
    return sorted(items, key=lambda x: x[1]["ElapsedTime-ms"])


@pytest.mark.slow
def test_replay_run_shows_the_recording_and_scores(movie, labels, tmp_path):
    """Through pycromanager and the shipped model: every screening image is the recorded frame
    of its sample time, the screening ends with the recording, run.json has the score."""
    from smartscope.acquire import Run

    proto = _protocol({"type": "replay", "movie": str(movie), "pixel_size_um": PIXEL_UM,
                       "frame_interval_s": DT_S, "truth": str(labels)},
                      interval_s=1.0, n_timepoints=50)
    out = tmp_path / "run"
    summary = Run(proto, out).execute()
    assert summary.status == "completed"
    assert T - 2 <= summary.screening_frames <= T  # cut to the recording (at_end: stop)
    assert any("shorter than the protocol's screening" in n for n in summary.notes)
    run = json.loads((out / "run.json").read_text())
    assert run["microscope"] == "replay" and run["scope_info"]["replay"]["frames"] == T
    ec = run["summary"]["event_capture"]["metaphase_zoom"]
    assert ec["episodes"] == 1  # A's metaphase, frames 1-2
    stack = tifffile.imread(movie)
    with (out / "replay_frames.csv").open() as fh:
        shown_by_image = list(csv.DictReader(fh))
    images = _images(out)
    assert len(images) == len(shown_by_image)
    shown = []
    for (mode, _, img), row in zip(images, shown_by_image, strict=True):
        k = int(row["movie_frame"])
        assert k == int(float(row["sample_time_s"]) // DT_S)
        assert np.array_equal(img, stack[k]) == (mode == "screen")  # 60x: magnified
        if mode == "screen":
            shown.append(k)
    assert shown[0] == 0 and shown == sorted(shown) and shown[-1] >= T - 2


@pytest.mark.slow
def test_cli_replay_errors_are_one_line(movie, tmp_path):
    cmd = [sys.executable, "-m", "smartscope", "run", str(ACQ / "mitosis_zoom.yaml"),
           "--replay", str(movie), "--frame-interval-s", "60", "--out", str(tmp_path / "r")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pixel_size_um is missing" in lines[0]


@pytest.mark.slow
def test_replay_of_the_real_hela_movie_scores_event_capture(tmp_path):
    if not HELA.is_file():
        pytest.skip("real HeLa movie not next to the repository (../shared/data/hela/, Cell "
                    "Tracking Challenge Fluo-N2DL-HeLa sequence 02)")
    out = tmp_path / "run"
    data = yaml.safe_load((ACQ / "mitosis_zoom.yaml").read_text())
    data["screening"]["n_timepoints"] = 4
    proto_file = tmp_path / "p.yaml"
    data["model"]["bundle"] = str(REPO / "models" / "hela_h2b_5class")
    proto_file.write_text(yaml.safe_dump(data))
    cmd = [sys.executable, "-m", "smartscope", "run", str(proto_file), "--replay", str(HELA),
           "--pixel-size-um", "0.645", "--frame-interval-s", "1800", "--truth", str(LABELS),
           "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "event capture [metaphase_zoom]:" in proc.stdout and "precision" in proc.stdout
    ec = json.loads((out / "run.json").read_text())["summary"]["event_capture"]
    assert ec["metaphase_zoom"]["episodes"] >= 4  # labelled metaphases in frames 0-3


@pytest.mark.slow
def test_replay_of_the_cellcognition_frames_runs(tmp_path):
    if not CELLCOG.is_dir():
        pytest.skip("CellCognition frames not next to the repository "
                    "(../shared/data/cellcognition_h2b/frames/)")
    from smartscope.acquire import Run

    proto = _protocol({"type": "replay", "movie": str(CELLCOG), "frame_pattern": "*_h2b.tif",
                       "pixel_size_um": 0.3225, "frame_interval_s": 240, "objective": "20x"},
                      objective="20x", interval_s=1.0, n_timepoints=3)
    summary = Run(proto, tmp_path / "run").execute()
    assert summary.status == "completed" and summary.screening_frames == 3


def test_run_notes_say_interpolation_and_end_of_recording(movie):
    from smartscope.acquire.replay import interpolation_note, recording_end_note, replay_config_for
    from smartscope.sim import ManualClock
    from smartscope.sim.replay import start

    proto = _protocol({"type": "replay", "movie": str(movie), "pixel_size_um": PIXEL_UM,
                       "frame_interval_s": DT_S})
    clock = ManualClock(0.0)
    cfg = replay_config_for(proto).model_copy(update={"real_exposure_time": False})
    with start(cfg, clock=clock) as scope:
        scope.core.snapImage()
        assert interpolation_note(scope, scope.frames) is None
        assert recording_end_note(scope, scope.frames) is None
        scope.core.setConfig("Objective", "60x")
        clock.set(T * DT_S)
        scope.core.snapImage()
        note = interpolation_note(scope, scope.frames)
        assert "60x (6x)" in note and "no real resolution" in note
        assert "1 image(s) were taken after the recording ended" in recording_end_note(
            scope, scope.frames)


def test_run_folder_inside_the_replayed_folder_is_refused(movie, tmp_path):
    from smartscope.acquire import Run
    from smartscope.errors import OutputError

    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(2):
        tifffile.imwrite(frames / f"f{t}.tif", np.zeros((32, 32), np.uint16))
    proto = _protocol({"type": "replay", "movie": str(frames), "pixel_size_um": PIXEL_UM,
                       "frame_interval_s": DT_S})
    with pytest.raises(OutputError, match="overlaps the input"):
        Run(proto, frames / "run").execute()
    assert sorted(p.name for p in frames.iterdir()) == ["f0.tif", "f1.tif"]
