"""Cut nucleus crops at a fixed physical scale: the classifier's input (see ``preprocess``).

A crop covers ``CROP_UM`` micrometres around the nucleus centre whatever the pixel size, resampled
to ``size`` x ``size`` pixels in one vectorised bilinear gather (no per-crop resize). When the
frame's pixels are much smaller than the crop's, the frame is first block-averaged by an integer
factor, so that downsampling does not alias. Samples outside the frame take the frame's
background level (a crop of a nucleus at the border shows empty background beyond the edge, not a
mirror image).
"""

from __future__ import annotations

import numpy as np

from smartscope.errors import ImageError
from smartscope.vision.background import block_mean
from smartscope.vision.detect import check_frame
from smartscope.vision.preprocess import CROP_UM, INPUT_SIZE, normalise


def background_level(image: np.ndarray) -> float:
    """A robust background level of a frame: the 5th percentile of a sparse pixel sample."""
    arr = np.asarray(image)
    step = max(1, int(np.sqrt(arr.size / 65536)))
    return float(np.percentile(arr[::step, ::step], 5))


def _centres(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    yy = np.atleast_1d(np.asarray(y, np.float64))
    xx = np.atleast_1d(np.asarray(x, np.float64))
    if yy.ndim != 1 or yy.shape != xx.shape:
        raise ImageError(
            f"crop centres have shapes {np.shape(y)} and {np.shape(x)}: give two 1-D arrays "
            "of the same length"
        )
    if not (np.isfinite(yy).all() and np.isfinite(xx).all()):
        raise ImageError("crop centres contain NaN or infinity: give finite pixel coordinates")
    return yy, xx


def extract_crops(
    image: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    pixel_size_um: float,
    crop_um: float = CROP_UM,
    size: int = INPUT_SIZE,
    fill: float | None = None,
    *,
    checked: bool = False,
) -> np.ndarray:
    """Cut square crops of ``crop_um`` um around each centre, resampled to ``size`` px.

    Parameters
    ----------
    image : 2-D array
        Raw frame (camera counts; offset included).
    y, x : 1-D arrays
        Crop centres in pixels of ``image`` (row, column), e.g. ``Nuclei.y`` and ``Nuclei.x``.
    pixel_size_um : float
        Pixel size of ``image``, um per pixel.
    crop_um : float
        Physical side of a crop, um (``preprocess.CROP_UM``, the model's field of view).
    size : int
        Side of the output crops, px.
    fill : float or None
        Value for samples outside the frame; None uses ``background_level(image)``.
    checked : bool
        ``image`` is what ``check_frame`` returned (it is not validated again).

    Returns
    -------
    array of float32, shape (N, size, size)
        Raw intensities (not normalised: see ``prepare_crops``).

    Raises
    ------
    ImageError
        If the frame is invalid (see ``check_frame``), the centres are malformed, or a size or
        pixel size is not positive.
    """
    arr = np.asarray(image) if checked else check_frame(image)
    yy, xx = _centres(y, x)
    for name, value in (("pixel_size_um", pixel_size_um), ("crop_um", crop_um), ("size", size)):
        if not np.isfinite(value) or value <= 0:
            raise ImageError(f"{name}={value}: give a positive number")
    size = int(size)
    if yy.size == 0:
        return np.zeros((0, size, size), np.float32)
    fill_value = background_level(arr) if fill is None else float(fill)
    step = crop_um / size / pixel_size_um  # frame pixels per crop pixel
    factor = int(step) if step >= 2 else 1
    src = block_mean(arr, factor) if factor > 1 else arr
    if factor > 1:  # centres in the reduced frame (pixel centres stay centres)
        yy = (yy + 0.5) / factor - 0.5
        xx = (xx + 0.5) / factor - 0.5
        step /= factor
    offsets = (np.arange(size) - (size - 1) / 2.0) * step
    if abs(step - 1.0) < 1e-9:  # same scale as the model: whole-pixel cut, no interpolation
        yy = np.rint(yy + offsets[0]) - offsets[0]
        xx = np.rint(xx + offsets[0]) - offsets[0]
    return _bilinear_gather(src, yy[:, None] + offsets, xx[:, None] + offsets, fill_value)


def _bilinear_gather(
    src: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float
) -> np.ndarray:
    """Sample ``src`` at the outer product of ``rows`` (N, S) and ``cols`` (N, S) -> (N, S, S).

    Samples outside ``src`` read ``fill``: the frame is padded (once) when any crop needs it.
    """
    r0 = np.floor(rows)
    c0 = np.floor(cols)
    fr = (rows - r0).astype(np.float32)[:, :, None]
    fc = (cols - c0).astype(np.float32)[:, None, :]
    exact = not (fr.any() or fc.any())
    h, w = src.shape
    lo = min(r0.min(), c0.min())
    over = max(r0.max() + 2 - h, c0.max() + 2 - w)
    pad = int(max(0, -lo, over))
    if pad:
        if np.issubdtype(src.dtype, np.integer):
            info = np.iinfo(src.dtype)
            fill = float(np.clip(np.rint(fill), info.min, info.max))
        src = np.pad(src, pad, mode="constant", constant_values=src.dtype.type(fill))
    wp = src.shape[1]
    flat = src.ravel()
    idx = (r0.astype(np.intp) + pad)[:, :, None] * wp + (c0.astype(np.intp) + pad)[:, None, :]
    v00 = np.take(flat, idx).astype(np.float32)
    if exact:
        return v00
    v01 = np.take(flat, idx + 1).astype(np.float32)
    v10 = np.take(flat, idx + wp).astype(np.float32)
    v11 = np.take(flat, idx + (wp + 1)).astype(np.float32)
    top = v00 + (v01 - v00) * fc
    bottom = v10 + (v11 - v10) * fc
    return top + (bottom - top) * fr


def prepare_crops(
    image: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    pixel_size_um: float,
    crop_um: float = CROP_UM,
    size: int = INPUT_SIZE,
    fill: float | None = None,
    *,
    checked: bool = False,
) -> np.ndarray:
    """Crops ready for the classifier: ``normalise(extract_crops(...))`` with a channel axis.

    Returns
    -------
    array of float32, shape (N, size, size, 1), values in [-1, 1]

    Raises
    ------
    ImageError
        As ``extract_crops`` (``checked`` as there).
    """
    raw = extract_crops(image, y, x, pixel_size_um, crop_um=crop_um, size=size, fill=fill,
                        checked=checked)
    if raw.shape[0] == 0:
        return raw[..., None]
    return normalise(raw)[..., None]


def refield_crop(
    crop: np.ndarray, pixel_size_um: float, crop_um: float, size: int = INPUT_SIZE
) -> np.ndarray:
    """Resample a stored crop from its own pixel size to the model's field (raw intensities).

    The crop's centre stays the centre; the model's ``crop_um`` field is cut from it with the
    run-time geometry (:func:`extract_crops`, so a crop file and a live frame give the same
    input). Where the stored crop covers less than ``crop_um``, the rest reads the crop's own
    background level (5th percentile).

    Parameters
    ----------
    crop : 2-D array
        A crop file's pixels (any size, any bit depth).
    pixel_size_um : float
        Pixel size of the stored crop, um per pixel.
    crop_um : float
        The model's field, um.
    size : int
        Side of the output, px.

    Returns
    -------
    array of float32, shape (size, size)

    Raises
    ------
    ImageError
        If the crop is not a non-empty 2-D image or a size is not positive.
    """
    arr = np.asarray(crop)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        raise ImageError(f"crop has shape {np.shape(crop)}: give a 2-D grey image")
    h, w = arr.shape
    cy, cx = np.array([(h - 1) / 2.0]), np.array([(w - 1) / 2.0])
    return extract_crops(arr, cy, cx, pixel_size_um, crop_um=crop_um, size=size)[0]


def field_coverage(shape: tuple[int, int], pixel_size_um: float, crop_um: float) -> float:
    """Fraction of the model's ``crop_um`` x ``crop_um`` field that a stored crop covers (<= 1)."""
    h, w = shape
    return min(1.0, h * pixel_size_um / crop_um) * min(1.0, w * pixel_size_um / crop_um)
