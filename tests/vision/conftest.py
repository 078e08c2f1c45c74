"""Synthetic camera frames: round nuclei on an uneven background with a camera offset and noise."""

from __future__ import annotations

import numpy as np
import pytest


def render_frame(
    shape: tuple[int, int],
    centres_um: np.ndarray,
    pixel_size_um: float,
    *,
    diameter_um: float = 18.0,
    brightness: float | np.ndarray = 400.0,
    offset: float = 33000.0,
    gradient_per_100um: float = 25.0,
    noise: float = 6.0,
    seed: int = 0,
) -> np.ndarray:
    """A uint16 frame with soft-edged discs at ``centres_um`` (y, x in micrometres)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy_um, xx_um = (yy + 0.5) * pixel_size_um, (xx + 0.5) * pixel_size_um
    # uneven illumination: a tilted plane, counts per 100 um
    img = offset + gradient_per_100um * (xx_um + 0.5 * yy_um) / 100.0
    bright = np.broadcast_to(np.asarray(brightness, np.float32), (len(centres_um),))
    r = diameter_um / 2.0
    for (cy, cx), b in zip(centres_um, bright, strict=True):
        d = np.hypot(yy_um - cy, xx_um - cx)
        img = img + b / (1.0 + np.exp((d - r) / (0.06 * diameter_um)))
    img = img + rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 65535).astype(np.uint16)


def grid_centres(n_rows: int, n_cols: int, spacing_um: float, margin_um: float) -> np.ndarray:
    ys = margin_um + spacing_um * np.arange(n_rows)
    xs = margin_um + spacing_um * np.arange(n_cols)
    return np.array([(y, x) for y in ys for x in xs], np.float64)


@pytest.fixture
def synthetic_frame():
    """A 0.645 um/px frame with 12 well separated nuclei of mixed brightness."""
    centres = grid_centres(3, 4, 45.0, 40.0)
    brightness = np.array([40, 400, 2000, 150] * 3, np.float32)
    image = render_frame((220, 310), centres, 0.645, brightness=brightness)
    return image, centres, 0.645
