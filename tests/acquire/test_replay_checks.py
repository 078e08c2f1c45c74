"""A replay's movie, labels and objectives are checked before anything is written: a bad input
is one line (exit 2) from ``run`` and ``validate``, leaves no run folder behind, and the same
``--out`` works once the input is fixed (fast: no acquisition)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from smartscope.cli import main

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = REPO / "acquisitions" / "mitosis_zoom.yaml"


def _protocol(tmp: Path, movie: str, **microscope) -> Path:
    data = yaml.safe_load(PROTOCOL.read_text())
    data["model"]["bundle"] = str((PROTOCOL.parent / data["model"]["bundle"]).resolve())
    data["microscope"] = {"type": "replay", "movie": movie, "pixel_size_um": 0.645,
                          "frame_interval_s": 60, **microscope}
    path = tmp / "replay.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture()
def rgb(tmp_path) -> Path:
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((64, 80, 3), np.uint8), photometric="rgb")
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.mark.parametrize("movie, truth, needle", [
    ("rgb.tif", None, "colour (RGB) image"),
    ("nope.tif", None, "movie not found"),
    ("ok.tif", "rgb.tif", "not a readable CSV"),
])
def test_bad_replay_input_leaves_no_run_folder(tmp_path, rgb, capsys, movie, truth, needle):
    out = tmp_path / "run"
    tifffile.imwrite(tmp_path / "ok.tif", np.full((2, 64, 80), 100, np.uint16),
                     photometric="minisblack")
    args = ["run", str(PROTOCOL), "--replay", str(tmp_path / movie), "--pixel-size-um",
            "0.645", "--frame-interval-s", "60", "--out", str(out), "--quiet"]
    if truth is not None:
        args += ["--truth", str(tmp_path / truth)]
    assert main(args) == 2
    assert needle in _one_line(capsys)
    assert not out.exists()  # was: a failed run.json there, and the fixed rerun refused


def test_validate_opens_the_movie(tmp_path, rgb, capsys):
    assert main(["validate", str(_protocol(tmp_path, str(rgb)))]) == 2
    assert "rgb.tif" in _one_line(capsys)


def test_objectives_whose_magnification_is_unknown_are_refused(tmp_path, capsys):
    movie = tmp_path / "m.tif"
    tifffile.imwrite(movie, np.full((2, 64, 80), 100, np.uint16), photometric="minisblack")
    text = PROTOCOL.read_text().replace("10x", "low").replace("60x", "high")
    data = yaml.safe_load(text)
    data["model"]["bundle"] = str((PROTOCOL.parent / data["model"]["bundle"]).resolve())
    data["microscope"] = {"type": "replay", "movie": str(movie), "pixel_size_um": 0.645,
                          "frame_interval_s": 60, "objectives": {"low": {}, "high": {}}}
    path = tmp_path / "names.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    line = _one_line(capsys)
    assert "names.yaml" in line and "microscope.objectives.high.pixel_size_um" in line
    assert not (tmp_path / "run").exists()
    data["microscope"]["objectives"]["high"] = {"pixel_size_um": 0.1075}
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 0
    assert "2 frames of 64 x 80 px" in capsys.readouterr().out


def test_replay_does_not_keep_a_real_microscopes_camera_orientation(tmp_path):
    from smartscope.acquire.replay import with_replay
    from smartscope.errors import ProtocolError
    from smartscope.protocol import CameraOrientation, parse_protocol

    movie = tmp_path / "m.tif"
    tifffile.imwrite(movie, np.full((2, 64, 80), 100, np.uint16), photometric="minisblack")
    data = yaml.safe_load(PROTOCOL.read_text())
    data["microscope"]["camera"] = {"flip_x": True, "rotation_deg": 90}
    proto = parse_protocol(data, "p.yaml", base_dir=PROTOCOL.parent)
    replay = with_replay(proto, movie, pixel_size_um=0.645, frame_interval_s=60)
    assert replay.microscope.camera == CameraOrientation()  # was: flip_x and 90 deg kept
    data["microscope"] = {"type": "replay", "movie": str(movie), "pixel_size_um": 0.645,
                          "frame_interval_s": 60, "camera": {"flip_y": True}}
    with pytest.raises(ProtocolError, match="replay camera shows the recording upright"):
        parse_protocol(data, "p.yaml", base_dir=PROTOCOL.parent)


def test_replay_frames_say_which_images_reached_the_run(tmp_path):
    import csv

    from smartscope.acquire.replay import write_frames_csv
    from smartscope.sim.replay import ReplayFrame

    frames = [ReplayFrame(index=i, t_s=60.0 * i, movie_frame=i - 1, past_end=False,
                          stage_x_um=0.0, stage_y_um=0.0, z_um=0.0, objective="10x",
                          channel="FITC", pixel_size_um=0.645, shape=(64, 80))
              for i in (1, 2, 3)]
    write_frames_csv(tmp_path / "replay_frames.csv", frames, in_run={1, 2})  # 3: interrupted
    with (tmp_path / "replay_frames.csv").open() as fh:
        assert [r["in_run"] for r in csv.DictReader(fh)] == ["1", "1", "0"]
