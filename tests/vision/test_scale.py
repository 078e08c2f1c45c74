"""A pixel size 10x off is told from the frame itself: ``scale_mismatch`` measures the nuclei's
size without the pixel size (before, detection at a wrong pixel size returned "nuclei" of
plausible areas, e.g. 2677 of median 343 um^2 on the CellCognition frame at 3.225 instead of
0.3225 um/px, or 5 clusters at 0.0645 um/px on the HeLa frame, without a word)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile

from smartscope.vision.scale import apparent_diameter_px, scale_mismatch
from tests.conftest import REPO

from .conftest import grid_centres, render_frame

CELLCOGNITION = REPO.parent / "shared" / "data" / "cellcognition_h2b" / "frames" / \
    "P0040_T00001_h2b.tif"


@pytest.mark.parametrize(("pixel_size_um", "shape"), [(0.645, (300, 400)), (1.29, (150, 200)),
                                                     (0.3225, (500, 500))])
def test_apparent_diameter_of_synthetic_nuclei(pixel_size_um, shape):
    centres = grid_centres(4, 5, 35.0, 20.0) if shape[0] < 500 else grid_centres(4, 4, 35, 20)
    img = render_frame(shape, centres, pixel_size_um)
    d_um = apparent_diameter_px(img) * pixel_size_um
    assert 18 / 1.5 < d_um < 18 * 1.5
    assert scale_mismatch(img, pixel_size_um, 18.0) is None
    assert "check the pixel size" in scale_mismatch(img, pixel_size_um * 10, 18.0)
    assert "check the pixel size" in scale_mismatch(img, pixel_size_um / 10, 18.0)


def test_a_flat_frame_has_no_size():
    assert apparent_diameter_px(np.full((64, 64), 100, np.uint16)) is None
    assert scale_mismatch(np.zeros((64, 64)), 0.645, 18.0) is None


def _hela(path):
    return tifffile.imread(path)[0]


def _cellcognition():
    if not CELLCOGNITION.is_file():
        pytest.skip("the CellCognition H2B frames are not next to the repository "
                    "(../shared/data/cellcognition_h2b/frames)")
    return tifffile.imread(CELLCOGNITION)


@pytest.mark.parametrize("which", ["hela", "hela_binned", "cellcognition"])
def test_real_frames_at_their_pixel_size_and_10x_off(hela_frames, which):
    if which == "cellcognition":
        img, ps = _cellcognition(), 0.3225  # 20x
    else:
        img, ps = _hela(hela_frames).astype(np.float64), 0.645  # 10x, offset ~33000
        if which == "hela_binned":
            h, w = (s // 2 * 2 for s in img.shape)
            img, ps = img[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)), 1.29
    assert 12 < apparent_diameter_px(img) * ps < 24
    said = scale_mismatch(img, ps * 10, 18.0)
    assert said is not None and "x the expected 18 um: check the pixel size" in said


def test_classify_warns_about_a_pixel_size_10x_off(hela_frames, tmp_path, caplog):
    from smartscope.commands.classify import run_classify

    frame = tmp_path / "hela.tif"
    tifffile.imwrite(frame, _hela(hela_frames))
    with caplog.at_level(logging.WARNING, logger="smartscope.commands.classify"):
        run_classify([frame], REPO / "models" / "hela_h2b_5class", tmp_path / "c.csv", 0.0645,
                     num_threads=1)
    said = [r.getMessage() for r in caplog.records if "check the pixel size" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"{frame}: the nuclei of this frame look ")


def test_crops_warn_about_a_pixel_size_10x_off(hela_frames, tmp_path, caplog):
    from smartscope.vision.cut import iter_crops

    frame = tmp_path / "hela.tif"
    tifffile.imwrite(frame, _hela(hela_frames))
    with caplog.at_level(logging.WARNING, logger="smartscope.vision.cut"):
        assert len(list(iter_crops([frame], 0.0645))) >= 3
    said = [r.getMessage() for r in caplog.records if "check the pixel size" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"{frame}: the nuclei of this frame look ")
