"""The images obey the optics: stage moves, magnification, focus, exposure, channels."""

from __future__ import annotations

import numpy as np
import pytest

from smartscope.sim import ManualClock, SimConfig, start


def _blob(img: np.ndarray) -> tuple[float, float, float]:
    """Centroid (col, row) and RMS radius (px) of the bright object in a noise-free image."""
    img = img.astype(float) - np.median(img)  # a single cell: the median is background
    w = np.where(img > 0.05 * img.max(), img, 0.0)
    rows, cols = np.indices(img.shape)
    m = w.sum()
    c, r = (w * cols).sum() / m, (w * rows).sum() / m
    rad = np.sqrt((w * ((cols - c) ** 2 + (rows - r) ** 2)).sum() / m)
    return float(c), float(r), float(rad)


def _edges(img: np.ndarray) -> float:
    gy, gx = np.gradient(img.astype(float))
    return float(np.sqrt(gx**2 + gy**2).max())


def test_stage_move_shifts_nucleus_by_d_over_pixel_size(one_cell: SimConfig) -> None:
    with start(one_cell, clock=ManualClock()) as scope:
        ps = scope.core.getPixelSizeUm()
        c0, r0, _ = _blob(scope.expected_image())
        scope.core.setXYPosition(30.0, -20.0)
        c1, r1, _ = _blob(scope.expected_image())
        assert c1 - c0 == pytest.approx(-30.0 / ps, abs=0.3)
        assert r1 - r0 == pytest.approx(20.0 / ps, abs=0.3)
        cell = scope.truth(in_view=True)[0]
        assert cell.col_px == pytest.approx(c1, abs=1.0)
        assert cell.row_px == pytest.approx(r1, abs=1.0)


def test_60x_magnifies_the_same_cell_6x_around_the_image_centre(one_cell: SimConfig) -> None:
    with start(one_cell, clock=ManualClock()) as scope:
        core = scope.core
        core.setXYPosition(4.0, 3.0)  # cell off-centre by a few um
        h, w = core.getImageHeight(), core.getImageWidth()
        c10, r10, rad10 = _blob(scope.expected_image())
        core.setConfig("Objective", "60x")
        assert core.getPixelSizeUm() == pytest.approx(0.1075)
        img60 = scope.expected_image()
        c60, r60, rad60 = _blob(img60)
        core.setConfig("Objective", "10x")
        img10 = scope.expected_image()
    # centroid offsets from the image centre scale by 6 (within 0.3 um), and so does the size
    cx, cy = (w - 1) / 2, (h - 1) / 2  # the optical axis: the sensor's centre
    assert (c60 - cx) == pytest.approx(6 * (c10 - cx), abs=3)
    assert (r60 - cy) == pytest.approx(6 * (r10 - cy), abs=3)
    assert rad60 / rad10 == pytest.approx(6.0, rel=0.1)
    # the 60x frame binned 6x6 is the centre of the 10x frame
    n = 170  # 1020 px of the 60x frame
    lo60 = h // 2 - 3 * n
    binned = img60[lo60:lo60 + 6 * n, lo60:lo60 + 6 * n].reshape(n, 6, n, 6).mean(axis=(1, 3))
    centre10 = img10[h // 2 - n // 2:h // 2 + n // 2, w // 2 - n // 2:w // 2 + n // 2]
    assert np.corrcoef(binned.ravel(), centre10.ravel())[0, 1] > 0.95


def test_defocus_blurs(one_cell: SimConfig) -> None:
    with start(one_cell, clock=ManualClock()) as scope:
        sharp = scope.expected_image()
        scope.core.setPosition(scope.config.focal_plane_um("10x") + 40.0)
        blurred = scope.expected_image()
        scope.core.setConfig("Objective", "60x")
        scope.core.setPosition(scope.config.focal_plane_um("60x"))
        sharp60 = scope.expected_image()
        scope.core.setPosition(scope.config.focal_plane_um("60x") + 2.0)
        blurred60 = scope.expected_image()
    assert blurred.max() < 0.7 * sharp.max()
    assert blurred.sum() == pytest.approx(sharp.sum(), rel=0.05)  # light is spread, not lost
    assert _blob(blurred)[2] > _blob(sharp)[2]
    assert _edges(blurred) < 0.5 * _edges(sharp)
    assert _edges(blurred60) < 0.5 * _edges(sharp60)  # high NA: 2 um is far out of focus


def test_exposure_doubles_signal_above_offset(fast_config: SimConfig) -> None:
    with start(fast_config, clock=ManualClock()) as scope:
        core = scope.core
        offset = fast_config.camera_offset_adu
        means = []
        for exp in (50.0, 100.0):
            core.setExposure(exp)
            core.snapImage()
            img = core.getImage()
            assert img.dtype == np.uint16 and img.shape == (512, 512)
            means.append(img.astype(float).mean() - offset)
    assert means[1] / means[0] == pytest.approx(2.0, rel=0.02)


def test_noise_is_shot_plus_read_noise(fast_config: SimConfig) -> None:
    with start(fast_config.model_copy(update={"n_cells": 0}), clock=ManualClock()) as scope:
        scope.core.snapImage()
        img = scope.core.getImage().astype(float)[400:600, 400:600]
    bg = fast_config.background_counts_per_ms * fast_config.exposure_ms
    assert img.mean() - fast_config.camera_offset_adu == pytest.approx(bg, rel=0.1)
    assert img.std() == pytest.approx(np.sqrt(bg + fast_config.read_noise_e**2), rel=0.1)


def test_channels_show_what_they_should(scope) -> None:
    core = scope.core
    level = {}
    for ch in ("DAPI", "FITC", "Rhodamine", "Cy5", "Brightfield"):
        core.setConfig("Channel", ch)
        core.snapImage()
        img = core.getImage().astype(float) - scope.config.camera_offset_adu
        level[ch] = (np.percentile(img, 99.5), np.median(img))
    assert level["FITC"][0] > 400  # bright H2B-GFP nuclei
    assert level["DAPI"][0] > 200
    assert level["Cy5"][0] < 0.2 * level["FITC"][0]
    assert level["Brightfield"][1] > 10 * level["FITC"][1]  # transmitted light everywhere


def test_closed_shutter_gives_a_dark_frame(scope) -> None:
    core = scope.core
    core.setAutoShutter(False)
    core.setShutterOpen(False)
    core.snapImage()
    dark = core.getImage().astype(float)
    assert dark.mean() == pytest.approx(scope.config.camera_offset_adu, abs=1.0)
    core.setShutterOpen(True)
    core.snapImage()
    assert core.getImage().astype(float).mean() > dark.mean() + 20


def test_sensor_2048() -> None:
    cfg = SimConfig(sensor_px=2048, real_exposure_time=False, n_cells=150)
    with start(cfg, clock=ManualClock()) as scope:
        scope.core.snapImage()
        assert scope.core.getImage().shape == (2048, 2048)
        assert len(scope.truth(in_view=True)) > len(scope.truth()) * 0.5
