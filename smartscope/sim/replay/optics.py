"""What the replay camera sees: a window of a recorded frame at the current stage position,
magnified by the pixel-size ratio, blurred when out of focus.

Geometry (the simulator's convention, ``smartscope.sim.render``): the recording's centre pixel
(row ``(H - 1) / 2``, column ``(W - 1) / 2``) lies at stage ``centre_um``; a camera of ``h x w``
pixels of size ``p`` at stage (X, Y) sees at its pixel (row, col) the stage point
``x = X + (col - (w - 1) / 2) * p``, ``y = Y + (row - (h - 1) / 2) * p``. Outside the recorded
field the camera sees background (the recording's level and noise).

At another pixel size than the recording's, each camera pixel is interpolated (bilinear) from
the recorded pixels: magnifying adds no detail, and zooming out is low-pass filtered first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True, slots=True)
class Window:
    """Where the camera looks on the recording."""

    stage_x_um: float
    stage_y_um: float
    pixel_size_um: float
    shape: tuple[int, int]


def recorded_coords(window: Window, recorded_shape: tuple[int, int], recorded_pixel_um: float,
                    centre_um: tuple[float, float]) -> tuple[float, float, float]:
    """(row0, col0, step): recorded (row, col) of camera pixel (0, 0), and the recorded pixels
    per camera pixel (the same on both axes)."""
    hr, wr = recorded_shape
    h, w = window.shape
    step = window.pixel_size_um / recorded_pixel_um
    p = recorded_pixel_um
    col0 = (wr - 1) / 2 + (window.stage_x_um - centre_um[0]) / p - (w - 1) / 2 * step
    row0 = (hr - 1) / 2 + (window.stage_y_um - centre_um[1]) / p - (h - 1) / 2 * step
    return row0, col0, step


def render(frame: np.ndarray, window: Window, *, recorded_pixel_um: float,
           centre_um: tuple[float, float], blur_um: float, background: float, noise: float,
           rng: np.random.Generator) -> np.ndarray:
    """The camera image (float32, ADU) of ``window`` on one recorded frame.

    Parameters
    ----------
    frame : (H, W) array
        The recorded frame.
    window : Window
    recorded_pixel_um : float
        Pixel size of the recording, um/px.
    centre_um : (x, y)
        Stage position of the recording's centre, um.
    blur_um : float
        Extra Gaussian blur (sigma, um in the sample) for defocus; 0 in focus.
    background, noise : float
        Background level and noise (ADU, standard deviation) seen outside the recording.
    rng : numpy Generator
        For the background noise.
    """
    h, w = window.shape
    hr, wr = frame.shape
    row0, col0, step = recorded_coords(window, frame.shape, recorded_pixel_um, centre_um)
    blur_rec = blur_um / recorded_pixel_um
    exact = (abs(step - 1.0) < 1e-9 and abs(row0 - round(row0)) < 1e-6
             and abs(col0 - round(col0)) < 1e-6)
    if exact:
        out = np.full((h, w), np.nan, dtype=np.float32)
        r0, c0 = int(round(row0)), int(round(col0))
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + h, hr), min(c0 + w, wr)
        if rr0 < rr1 and cc0 < cc1:
            src = frame[rr0:rr1, cc0:cc1].astype(np.float32)
            if blur_rec > 0.3:
                src = _blur_region(frame, (rr0, rr1, cc0, cc1), blur_rec)
            out[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0] = src
    else:
        out = _resample(frame, row0, col0, step, (h, w), blur_rec)
    missing = np.isnan(out)
    if missing.any():
        n = int(missing.sum())
        out[missing] = background + noise * rng.standard_normal(n, dtype=np.float32)
    return out


def _blur_region(frame: np.ndarray, box: tuple[int, int, int, int], sigma: float) -> np.ndarray:
    """Gaussian blur of frame[r0:r1, c0:c1] using the recorded pixels around it."""
    r0, r1, c0, c1 = box
    pad = int(math.ceil(3 * sigma))
    hr, wr = frame.shape
    pr0, pc0 = max(r0 - pad, 0), max(c0 - pad, 0)
    pr1, pc1 = min(r1 + pad, hr), min(c1 + pad, wr)
    region = ndimage.gaussian_filter(frame[pr0:pr1, pc0:pc1].astype(np.float32), sigma,
                                     mode="nearest", truncate=3.0)
    return region[r0 - pr0:r1 - pr0, c0 - pc0:c1 - pc0]


def _resample(frame: np.ndarray, row0: float, col0: float, step: float,
              shape: tuple[int, int], blur_rec: float) -> np.ndarray:
    h, w = shape
    hr, wr = frame.shape
    # anti-aliasing when a camera pixel spans several recorded pixels, plus defocus
    aa = 0.5 * math.sqrt(step**2 - 1.0) if step > 1.0 else 0.0
    sigma = math.hypot(aa, blur_rec)
    pad = int(math.ceil(3 * sigma)) + 2
    r_lo = max(int(math.floor(row0)) - pad, 0)
    c_lo = max(int(math.floor(col0)) - pad, 0)
    r_hi = min(int(math.ceil(row0 + (h - 1) * step)) + pad + 1, hr)
    c_hi = min(int(math.ceil(col0 + (w - 1) * step)) + pad + 1, wr)
    out = np.full((h, w), np.nan, dtype=np.float32)
    if r_lo >= r_hi or c_lo >= c_hi:
        return out
    region = frame[r_lo:r_hi, c_lo:c_hi].astype(np.float32)
    if sigma > 0.3:
        region = ndimage.gaussian_filter(region, sigma, mode="nearest", truncate=3.0)
    # camera pixels whose centre falls inside the recording (half a pixel of slack at the edge)
    rows = row0 + step * np.arange(h)
    cols = col0 + step * np.arange(w)
    rin = np.flatnonzero((rows >= -0.5) & (rows <= hr - 0.5))
    cin = np.flatnonzero((cols >= -0.5) & (cols <= wr - 0.5))
    if rin.size == 0 or cin.size == 0:
        return out
    sub_shape = (int(rin[-1] - rin[0] + 1), int(cin[-1] - cin[0] + 1))
    offset = (rows[rin[0]] - r_lo, cols[cin[0]] - c_lo)
    vals = ndimage.affine_transform(region, (step, step), offset=offset, output_shape=sub_shape,
                                    order=1, mode="nearest", prefilter=False)
    out[rin[0]:rin[-1] + 1, cin[0]:cin[-1] + 1] = vals
    return out
