"""``smartscope crops``: detect, cut, index and contact sheets on synthetic and real frames."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile

from smartscope.cli import main
from smartscope.errors import ImageError
from smartscope.vision.cut import INDEX_FIELDS
from smartscope.vision.io import read_frames

PX_UM = 0.645


def synthetic_frame(centres_px: list[tuple[int, int]], shape=(200, 260), seed=0) -> np.ndarray:
    """uint16 frame: soft discs of ~18 um on a camera offset, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    img = np.full(shape, 33000.0, np.float32)
    r = 9.0 / PX_UM
    for cy, cx in centres_px:
        img += 600.0 / (1.0 + np.exp(np.minimum((np.hypot(yy - cy, xx - cx) - r) / 1.5, 50)))
    img += rng.normal(0, 6, shape)
    return np.clip(img, 0, 65535).astype(np.uint16)


CENTRES = [(60, 60), (60, 170), (140, 100), (150, 200)]


def _index(out: Path) -> list[dict]:
    with open(out / "index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_crops_writes_crops_index_and_sheets(tmp_path):
    frame = tmp_path / "frame.tif"
    tifffile.imwrite(frame, synthetic_frame(CENTRES))
    out = tmp_path / "out"
    rc = main(["crops", str(frame), "--pixel-size-um", str(PX_UM), "--out", str(out)])
    assert rc == 0
    rows = _index(out)
    assert tuple(rows[0]) == INDEX_FIELDS
    assert len(rows) == len(CENTRES)
    found = np.array([(float(r["y"]), float(r["x"])) for r in rows])
    for cy, cx in CENTRES:
        assert np.hypot(found[:, 0] - cy, found[:, 1] - cx).min() < 3
    for r in rows:
        crop = tifffile.imread(out / r["file"])
        assert crop.shape == (64, 64) and crop.dtype == np.uint16
        assert r["source"] == "frame.tif" and r["frame"] == "0"
        assert float(r["area_um2"]) > 100 and float(r["mean_intensity"]) > 100
        # the nucleus is in the middle of its crop
        assert crop[28:36, 28:36].mean() > crop[:4].mean() + 200
    assert (out / "sheets" / "sheet_000.png").is_file()


def test_crops_reads_stacks_and_several_files(tmp_path):
    stack = np.stack([synthetic_frame(CENTRES[:2], seed=1), synthetic_frame(CENTRES, seed=2)])
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    tifffile.imwrite(tmp_path / "one.tif", synthetic_frame(CENTRES[2:], seed=3))
    out = tmp_path / "out"
    rc = main(["crops", str(tmp_path / "stack.tif"), str(tmp_path / "one.tif"),
               "--pixel-size-um", str(PX_UM), "--out", str(out)])
    assert rc == 0
    rows = _index(out)
    assert [(r["source"], r["frame"]) for r in rows].count(("stack.tif", "1")) == 4
    assert len(rows) == 2 + 4 + 2
    assert len({r["crop_id"] for r in rows}) == len(rows)


def test_crops_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["crops", str(tmp_path / "missing.tif"), "--pixel-size-um", "0.645",
                 "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
    tifffile.imwrite(tmp_path / "rgb4d.tif", np.zeros((2, 3, 20, 20), np.uint16),
                     photometric="minisblack")
    with pytest.raises(ImageError, match="one grey channel"):
        read_frames(tmp_path / "rgb4d.tif")
    tifffile.imwrite(tmp_path / "ok.tif", synthetic_frame(CENTRES))
    assert main(["crops", str(tmp_path / "ok.tif"), "--pixel-size-um", "0",
                 "--out", str(out)]) == 2


def test_crops_on_a_real_frame(hela_frames, tmp_path):
    frame = tifffile.imread(hela_frames, key=0)
    tifffile.imwrite(tmp_path / "f0.tif", frame)
    rc = main(["crops", str(tmp_path / "f0.tif"), "--pixel-size-um", str(PX_UM),
               "--out", str(tmp_path / "out")])
    assert rc == 0
    assert 100 <= len(_index(tmp_path / "out")) <= 220  # about 130-150 nuclei per frame
