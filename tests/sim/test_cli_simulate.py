"""``smartscope simulate --snap``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from smartscope.cli import main


def test_simulate_snap_writes_a_frame(tmp_path: Path) -> None:
    out, png, csv = tmp_path / "f.tif", tmp_path / "f.png", tmp_path / "cells.csv"
    rc = main(["simulate", "--snap", str(out), "--png", str(png), "--truth", str(csv),
               "--objective", "20x", "--channel", "FITC", "--x-um", "50", "--y-um", "-20",
               "--exposure-ms", "50", "--sensor-px", "512", "--seed", "2", "--time-s", "3600"])
    assert rc == 0
    img = tifffile.imread(out)
    assert img.shape == (512, 512) and img.dtype == np.uint16
    assert img.max() > img.min() + 200  # nuclei above background
    assert png.stat().st_size > 1000
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("id,parent_id,phase") and len(lines) > 5


def test_simulate_refuses_unknown_objective(tmp_path: Path, capsys) -> None:
    rc = main(["simulate", "--snap", str(tmp_path / "f.tif"), "--objective", "40x"])
    assert rc == 2
    assert "choose one of 10x, 20x, 60x" in capsys.readouterr().err
