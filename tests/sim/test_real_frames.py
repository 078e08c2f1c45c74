"""Simulated 10x frames against the real HeLa H2B-GFP frames (skipped without them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage
from skimage import filters, measure

from smartscope.sim import ManualClock, SimConfig, start


def frame_stats(img: np.ndarray) -> dict[str, float]:
    """Background, noise, nucleus area (px) and brightness above background, one method for both.

    Otsu threshold on a lightly smoothed frame; background = median outside the dilated nuclei;
    noise from neighbouring-pixel differences in the background (robust MAD).
    """
    f = img.astype(float)
    sm = filters.gaussian(f, 1, preserve_range=True)
    mask = sm > filters.threshold_otsu(sm)
    lab = measure.label(mask)
    bgmask = ~ndimage.binary_dilation(mask, iterations=5)
    bg = float(np.median(f[bgmask]))
    d = (f[:, 1:] - f[:, :-1])[bgmask[:, 1:] & bgmask[:, :-1]]
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2)
    props = [p for p in measure.regionprops(lab, intensity_image=f) if p.area >= 100]
    return {
        "background": bg,
        "noise": noise,
        "count": float(len(props)),
        "area_px": float(np.median([p.area for p in props])),
        "above_bg": float(np.median([p.intensity_mean for p in props])) - bg,
    }


def sim_frame(seed: int = 0) -> np.ndarray:
    with start(SimConfig(seed=seed, real_exposure_time=False), clock=ManualClock()) as scope:
        scope.core.snapImage()
        img = scope.core.getImage()
    return img[162:862]  # a 700-row band, like the 700 x 1100 real frames


@pytest.mark.slow
def test_simulated_10x_frame_matches_real_statistics(hela_frames: Path) -> None:
    real = tifffile.imread(hela_frames)
    r = [frame_stats(real[i]) for i in (0, 10, 19)]
    s = [frame_stats(sim_frame(seed)) for seed in (0, 1)]
    mean = {k: float(np.mean([x[k] for x in r])) for k in r[0]}
    sim = {k: float(np.mean([x[k] for x in s])) for k in s[0]}
    assert sim["area_px"] == pytest.approx(mean["area_px"], rel=0.3)
    assert sim["above_bg"] == pytest.approx(mean["above_bg"], rel=0.35)
    assert sim["noise"] == pytest.approx(mean["noise"], rel=0.5)
    assert sim["count"] == pytest.approx(mean["count"], rel=0.5)
