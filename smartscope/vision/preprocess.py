"""The ONE preprocessing that turns a nucleus into the classifier's input.

Training (``smartscope.train``), inference (``smartscope.classify`` via the acquisition hook) and
the data-set tools all call these functions, so a model never sees pixels prepared another way.

Geometry: a crop covers a fixed physical field of ``CROP_UM`` micrometres (64 px at 0.645 um/px,
the 10x pixel size of the MitoCheck / HeLa training data), resampled to ``INPUT_SIZE`` pixels, so
that a 10x and a 60x image of the same nucleus give similar crops.

Intensity (``NORMALISATION``): robust per-crop scaling. The ``LOW_PERCENTILE`` of the crop (the
local background, which removes the camera offset and uneven illumination) maps to -1, the
``HIGH_PERCENTILE`` maps to +1, values are clipped to [-1, 1]. A crop with no contrast maps to -1.
"""

from __future__ import annotations

import numpy as np

from smartscope.errors import ImageError

INPUT_SIZE = 64
"""Side of the model input, in pixels."""

REFERENCE_PIXEL_SIZE_UM = 0.645
"""Pixel size at which a crop is INPUT_SIZE pixels wide without resampling (um/px)."""

CROP_UM = INPUT_SIZE * REFERENCE_PIXEL_SIZE_UM
"""Physical side of a crop, in micrometres (41.28 um)."""

NORMALISATION = "percentile-1-99.8-v1"
"""Name stored in model cards; loading a bundle with another name is refused."""

LOW_PERCENTILE = 1.0
HIGH_PERCENTILE = 99.8
_MIN_RANGE = 1e-6


def normalise(crops: np.ndarray) -> np.ndarray:
    """Scale crops to float32 in [-1, 1] (see module docstring).

    Parameters
    ----------
    crops : array, shape (H, W) or (N, H, W) or (N, H, W, 1), any real dtype
        Raw intensities (camera counts, any bit depth, offset included).

    Returns
    -------
    array of float32 with the same shape.

    Raises
    ------
    ImageError
        If the array is empty, not numeric, or has the wrong number of dimensions.
    """
    arr = np.asarray(crops)
    if arr.size == 0:
        raise ImageError("cannot normalise an empty crop: give a non-empty image")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ImageError(f"crop has dtype {arr.dtype}: give integer or floating-point pixels")
    single = arr.ndim == 2
    if arr.ndim == 4 and arr.shape[-1] == 1:
        batch = arr[..., 0]
    elif arr.ndim == 3:
        batch = arr
    elif single:
        batch = arr[None]
    else:
        raise ImageError(
            f"crop array has shape {arr.shape}: give (H, W), (N, H, W) or (N, H, W, 1)"
        )
    flat = batch.reshape(batch.shape[0], -1).astype(np.float32, copy=False)
    lo, hi = _percentiles(flat, LOW_PERCENTILE, HIGH_PERCENTILE)
    scale = np.where(hi - lo > _MIN_RANGE, 2.0 / np.maximum(hi - lo, _MIN_RANGE), 0.0)
    scale = scale.astype(np.float32)
    out = (batch.astype(np.float32) - lo[:, None, None]) * scale[:, None, None] - np.float32(1.0)
    np.clip(out, -1.0, 1.0, out=out)
    if single:
        return out[0]
    return out.reshape(arr.shape)


def _percentiles(flat: np.ndarray, q_lo: float, q_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise percentiles with numpy's default linear interpolation, float32, from a single
    ``np.partition`` call (several times faster than ``np.percentile`` on a batch of crops)."""
    n = flat.shape[1]
    pos = [q / 100.0 * (n - 1) for q in (q_lo, q_hi)]
    ks = sorted({int(np.floor(p)) for p in pos} | {min(int(np.floor(p)) + 1, n - 1) for p in pos})
    part = np.partition(flat, ks, axis=1)
    result = []
    for p in pos:
        k0 = int(np.floor(p))
        k1 = min(k0 + 1, n - 1)
        frac = np.float32(p - k0)
        result.append(part[:, k0] + (part[:, k1] - part[:, k0]) * frac)
    return result[0], result[1]


def resize_to_input(crop: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Resample a square-ish crop that already covers ``CROP_UM`` to ``size`` x ``size`` (float32).

    Used for crop files of any size and bit depth (training folders); the acquisition path cuts
    crops at the right physical scale directly (``smartscope.vision``).

    Raises
    ------
    ImageError
        If the crop is not a non-empty 2-D array (a trailing channel axis of 1 is accepted).
    """
    arr = np.asarray(crop)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., 0] if arr.shape[-1] == 1 else arr[..., :3].mean(axis=-1)
    if arr.ndim != 2 or arr.size == 0:
        raise ImageError(f"crop has shape {np.shape(crop)}: give a 2-D grey image")
    arr = arr.astype(np.float32, copy=False)
    if arr.shape == (size, size):
        return arr
    from skimage.transform import resize

    return resize(arr, (size, size), order=1, anti_aliasing=True, preserve_range=True).astype(
        np.float32
    )


def prepare_crop_file_array(crop: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """A crop read from a file -> model input (size, size) float32 in [-1, 1]."""
    return normalise(resize_to_input(crop, size))
