"""Is the pixel size right? The size of the frame's blobs measured without it.

``find_nuclei`` looks for objects of ``diameter_um / pixel_size_um`` pixels and keeps only
objects near that size, so with a pixel size 10x off it still returns "nuclei" of plausible
areas in um^2: the texture inside real nuclei, or clusters of them. ``apparent_diameter_px``
measures the typical bright-blob diameter of the frame in pixels with a scale-normalised
Laplacian of Gaussian (the scale at which the strongest blobs respond most), which needs no
pixel size; ``scale_mismatch`` compares it with the expected nucleus diameter.

On the real HeLa frame (10x, 0.645 um/px) and the CellCognition frame (20x, 0.3225 um/px), and on
their 2 x 2 binned, 3x upsampled, 256 px cropped, 8-bit, 12-bit, offset and gradient variants,
the measured diameter is 16-21 um at the true pixel size (expected 18 um); a pixel size 10x off
reads 10x off.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from smartscope.vision.background import block_mean

SCALE_TOLERANCE = 3.0
"""Apparent / expected nucleus diameter beyond which (either way) the pixel size is doubted."""

_BLOB_FRACTION = 0.06
"""Blobs compared per scale: this fraction of the number of blobs of that size the frame could
hold (a few per sparse field, dozens per dense one), so many interphase nuclei outweigh a few
bright mitotic ones."""


_MAX_SIDE_PX = 1024
"""Larger frames are measured on their central 1024 x 1024 px."""


def apparent_diameter_px(image: np.ndarray) -> float | None:
    """Typical diameter of the frame's bright blobs, px, or None for a flat frame.

    Scales from 4 px to a third of the frame's shorter side, three per octave; each is measured
    on a block-mean copy where it spans 8-16 px (cheap at large scales, noise averaged down).
    A frame without nuclei gives a meaningless size (noise reads about 4 px): ask only about
    frames where nuclei were found.

    Parameters
    ----------
    image : 2-D array
        A raw frame (offset, gradients and bit depth do not matter).

    Returns
    -------
    float or None
    """
    a = np.asarray(image, np.float32)
    h, w = a.shape
    if max(h, w) > _MAX_SIDE_PX:  # the central field is enough, and keeps this under ~1 s
        y0, x0 = max(0, (h - _MAX_SIDE_PX) // 2), max(0, (w - _MAX_SIDE_PX) // 2)
        a = a[y0:y0 + _MAX_SIDE_PX, x0:x0 + _MAX_SIDE_PX]
    side = min(a.shape)
    diameters = 4.0 * 2.0 ** (np.arange(40) / 3.0)
    diameters = diameters[diameters <= side / 3.0]
    if diameters.size == 0 or float(a.max()) == float(a.min()):
        return None
    levels: dict[int, np.ndarray] = {}
    scores = np.zeros(diameters.size)
    for i, d in enumerate(diameters):
        f = 2 ** max(0, int(math.floor(math.log2(d / 8.0))))
        if f not in levels:
            levels[f] = block_mean(a, f).astype(np.float32) if f > 1 else a
        level = levels[f]
        sigma = d / f / (2.0 * math.sqrt(2.0))  # a disk of diameter d responds most here
        response = -(sigma**2) * ndi.gaussian_laplace(level, sigma, mode="nearest")
        peaks = (response == ndi.maximum_filter(response, size=max(3, int(2 * sigma) | 1))) \
            & (response > 0)
        values = np.sort(response[peaks])[::-1]
        k = max(3, int(round(_BLOB_FRACTION * a.size / d**2)))
        scores[i] = float(np.median(values[:k])) if values.size else 0.0
    if scores.max() <= 0:
        return None
    return float(diameters[int(np.argmax(scores))])


def scale_mismatch(image: np.ndarray, pixel_size_um: float, diameter_um: float,
                   tolerance: float = SCALE_TOLERANCE) -> str | None:
    """Why the pixel size looks wrong for this frame, or None when it looks right.

    Parameters
    ----------
    image : 2-D array
        A raw frame holding nuclei.
    pixel_size_um : float
        The pixel size the frame will be analysed at, um/px.
    diameter_um : float
        The expected nucleus diameter, um.
    tolerance : float
        Ratio (either way) between the apparent and the expected diameter that is accepted.

    Returns
    -------
    str or None
        A sentence with the apparent nucleus size at that pixel size and the pixel size that
        would give the expected one.
    """
    d_px = apparent_diameter_px(np.asarray(image))
    if d_px is None:
        return None
    seen_um = d_px * pixel_size_um
    ratio = seen_um / diameter_um
    if 1.0 / tolerance <= ratio <= tolerance:
        return None
    return (f"the nuclei of this frame look {seen_um:.3g} um across at {pixel_size_um:g} um/px, "
            f"{ratio:.2g}x the expected {diameter_um:g} um: check the pixel size (the sample's, "
            f"not the camera's; about {diameter_um / d_px:.2g} um/px would make them "
            f"{diameter_um:g} um) or the nucleus diameter")
