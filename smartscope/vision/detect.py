"""Find nuclei in a raw fluorescence frame (uint16 camera counts, any size, any pixel size).

Pipeline, all at a *working scale* of about ``diameter_um / WORK_PX_PER_DIAMETER`` um per pixel
(an integer block-mean of the frame, which is fast and averages the noise down):

1. smoothing with a small Gaussian, then the background (``background.estimate_background``: a
   grid of cells of ~2.5 nucleus diameters, low percentile then mean of background pixels,
   interpolated) is subtracted: this removes the camera offset and uneven illumination;
2. the noise of the result is measured on the frame itself (``noise_sigma``), so the threshold
   (a multiple of it, with hysteresis on each object's peak) adapts to camera and exposure and
   keeps dim interphase nuclei next to bright mitotic ones;
3. touching nuclei are split by a seeded watershed (``_split``), and each nucleus is trimmed to
   the pixels above a fraction of its own peak (no halo around bright nuclei);
4. objects are kept when their area lies within a range derived from the expected diameter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from smartscope.errors import ImageError
from smartscope.vision.background import block_mean, estimate_background, noise_sigma

log = logging.getLogger(__name__)

DEFAULT_DIAMETER_UM = 18.0
"""Expected nucleus diameter (HeLa, interphase), in micrometres."""

WORK_PX_PER_DIAMETER = 10.0
"""Pixels across an expected nucleus at the working scale."""

SATURATED_FRACTION = 0.25
"""A frame with more than this fraction of pixels at the dtype maximum is refused."""


@dataclass(frozen=True, eq=False)
class Nuclei:
    """Nuclei found in one frame; every array has one entry per nucleus.

    Attributes
    ----------
    y, x : float64 arrays
        Centroids in pixels of the input frame (row, column).
    area_um2 : float64 array
        Areas in square micrometres.
    mean_intensity : float64 array
        Mean intensity above the local background, in camera counts.
    touches_edge : bool array
        True where the nucleus touches the frame border (it may be cut off).
    pixel_size_um : float
        Pixel size of the frame, um per pixel.
    labels : int32 array of the frame's shape, or None
        Label image (0 = background, i + 1 = nucleus i), when asked for.
    """

    y: np.ndarray
    x: np.ndarray
    area_um2: np.ndarray
    mean_intensity: np.ndarray
    touches_edge: np.ndarray
    pixel_size_um: float
    labels: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def empty(cls, pixel_size_um: float, shape: tuple[int, int] | None = None) -> Nuclei:
        """No nuclei (with an all-zero label image when ``shape`` is given)."""
        z = np.zeros(0)
        labels = None if shape is None else np.zeros(shape, np.int32)
        return cls(z, z.copy(), z.copy(), z.copy(), np.zeros(0, bool), pixel_size_um, labels)


def check_frame(image: np.ndarray) -> np.ndarray:
    """Validate one camera frame and return it as an array.

    Raises
    ------
    ImageError
        If the frame is empty, not 2-D, not numeric, contains NaN or infinity, or is saturated.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]) and arr.size:
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:-1])
    if arr.ndim != 2:
        raise ImageError(
            f"frame has shape {arr.shape}: give one 2-D grey frame (split stacks into frames)"
        )
    if arr.size == 0:
        raise ImageError(f"frame has shape {arr.shape}: give a non-empty image")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ImageError(f"frame has dtype {arr.dtype}: give integer or floating-point pixels")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ImageError("frame contains NaN or infinite values: give finite pixel values")
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype.itemsize > 1:
        top = np.iinfo(arr.dtype).max
        sample = arr[:: max(1, arr.shape[0] // 256), :: max(1, arr.shape[1] // 256)]
        if np.mean(sample == top) > SATURATED_FRACTION:
            raise ImageError(
                f"frame is saturated ({np.mean(sample == top):.0%} of pixels at {top}): "
                "lower the exposure or the light power"
            )
    return arr


def _check_positive(name: str, value: float) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ImageError(f"{name}={value}: give a positive number")
    return float(value)


def _max_filter(image: np.ndarray, size: int) -> np.ndarray:
    """Approximate maximum filter: 2 x 2 max-pool, filter at half size, repeat back (4x faster)."""
    h, w = image.shape
    if size < 5 or min(h, w) < 4:
        return ndi.maximum_filter(image, size=size, mode="nearest")
    hp, wp = h + h % 2, w + w % 2
    a = np.pad(image, ((0, hp - h), (0, wp - w)), mode="edge") if (hp, wp) != (h, w) else image
    pooled = np.maximum(
        np.maximum(a[0::2, 0::2], a[0::2, 1::2]), np.maximum(a[1::2, 0::2], a[1::2, 1::2])
    )
    small = ndi.maximum_filter(pooled, size=size // 2 + 1, mode="nearest")
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)[:h, :w]


def working_factor(pixel_size_um: float, diameter_um: float) -> int:
    """Integer downsampling factor that gives about ``WORK_PX_PER_DIAMETER`` px per nucleus."""
    return max(1, int(round(diameter_um / WORK_PX_PER_DIAMETER / pixel_size_um)))


def find_nuclei(
    image: np.ndarray,
    pixel_size_um: float,
    diameter_um: float = DEFAULT_DIAMETER_UM,
    *,
    min_area_fraction: float = 0.2,
    max_area_fraction: float = 5.0,
    threshold_sigmas: float = 5.0,
    split: bool = True,
    core_fraction: float = 0.5,
    boundary_fraction: float = 0.3,
    peak_sigmas: float = 15.0,
    return_labels: bool = False,
    checked: bool = False,
) -> Nuclei:
    """Find nuclei in one raw fluorescence frame.

    Parameters
    ----------
    image : 2-D array, integer or float
        Raw camera frame (camera offset and uneven background are removed here).
    pixel_size_um : float
        Size of one pixel in the sample, um (e.g. 0.645 for a 10x objective on the HeLa data).
    diameter_um : float
        Expected nucleus diameter, um; sets the working scale, the splitting and the size filter.
    min_area_fraction, max_area_fraction : float
        Objects whose area is outside these fractions of the expected area ``pi (d/2)^2`` are
        dropped (the lower bound keeps compact metaphase plates and anaphase halves).
    threshold_sigmas : float
        Lowest threshold above the background, in multiples of the smoothed pixel noise.
    split : bool
        Split touching nuclei (seeded watershed, see ``_split``).
    core_fraction : float
        A pixel belongs to a nucleus core when brighter than this fraction of the brightest pixel
        within one diameter; separate cores become separate nuclei.
    boundary_fraction : float
        Pixels dimmer than this fraction of their nucleus' peak are left out of it (0: keep the
        whole thresholded area).
    peak_sigmas : float
        An object is kept only if its brightest pixel is this many noise sigmas above the
        background (hysteresis with ``threshold_sigmas``).
    return_labels : bool
        Also return a label image of the frame's shape (for overlays; costs a few ms).
    checked : bool
        ``image`` is what ``check_frame`` returned (it is not validated again).

    Returns
    -------
    Nuclei
        Empty when the frame holds no nucleus (e.g. an all-zero or constant frame).

    Raises
    ------
    ImageError
        If the frame is empty, not 2-D, not numeric, non-finite or saturated, or if the pixel
        size or diameter is not positive.
    """
    arr = np.asarray(image) if checked else check_frame(image)
    pixel_size_um = _check_positive("pixel_size_um", pixel_size_um)
    diameter_um = _check_positive("diameter_um", diameter_um)
    shape = arr.shape
    f = working_factor(pixel_size_um, diameter_um)
    work_px_um = f * pixel_size_um
    d_work = diameter_um / work_px_um
    work = block_mean(arr, f)
    if float(work.max()) == float(work.min()):
        log.debug("constant frame: no nuclei")
        return Nuclei.empty(pixel_size_um, shape if return_labels else None)

    cell = int(round(2.5 * d_work))
    smooth = ndi.gaussian_filter(work, max(0.5, 0.1 * d_work), mode="nearest", truncate=3.0)
    fg = smooth - estimate_background(smooth, cell_px=cell)
    noise_cell = max(4, int(round(0.6 * d_work)))  # small cells: some are pure background
    noise = max(noise_sigma(fg, noise_cell), 1e-6 * float(np.abs(work).max()))
    threshold = threshold_sigmas * noise
    mask = fg > threshold
    log.debug("noise %.3g, threshold %.3g counts above background", noise, threshold)
    if not mask.any():
        return Nuclei.empty(pixel_size_um, shape if return_labels else None)
    if split:
        labels = _split(fg, mask, d_work, core_fraction)
    else:
        labels, _ = ndi.label(mask)
    # hysteresis: an object must peak at peak_sigmas x noise (background texture does not);
    # tight outlines: pixels below boundary_fraction of the object's peak are its halo
    inside = labels > 0
    peak = np.zeros(int(labels.max()) + 1, np.float32)
    np.maximum.at(peak, labels[inside], fg[inside])
    peak[peak < peak_sigmas * noise] = np.inf
    peak[0] = np.inf
    labels = np.where(fg >= boundary_fraction * peak[labels], labels, 0)
    return _measure(labels, fg, f, shape, pixel_size_um, work_px_um, diameter_um,
                    min_area_fraction, max_area_fraction, return_labels)


def _split(fg: np.ndarray, mask: np.ndarray, d_work: float, core_fraction: float) -> np.ndarray:
    """Label ``mask``, splitting touching nuclei.

    Seeds are the *cores* of the objects: pixels brighter than ``core_fraction`` of the brightest
    pixel within one nucleus diameter (so a dim neck between two bright daughter nuclei falls out),
    reduced to the pixels whose distance to the core edge is within ``h`` of the largest distance
    within one diameter (a fast, local h-maxima: two equally bright touching nuclei give two
    seeds, an elongated nucleus gives one ridge). Connected components with one seed are final;
    only those with several seeds go through a watershed on the intensity.
    """
    from skimage.segmentation import watershed

    size = max(3, int(round(d_work)) | 1)
    core = mask & (fg >= core_fraction * _max_filter(fg, size))
    dist = ndi.distance_transform_cdt(core, metric="taxicab").astype(np.float32)
    h = max(1.0, 0.15 * d_work)
    seeds = core & (dist >= _max_filter(dist, size) - h)
    markers, n_seeds = ndi.label(seeds)
    labels, n = ndi.label(mask)
    if n_seeds == 0 or n == 0:
        return labels
    # seeds per component: split only components holding two or more
    pairs = np.unique(labels[seeds] * np.int64(n_seeds + 1) + markers[seeds])
    comp_of_seed = pairs // (n_seeds + 1)
    multi = np.flatnonzero(np.bincount(comp_of_seed, minlength=n + 1) > 1)
    if multi.size == 0:
        return labels
    is_multi = np.zeros(n + 1, bool)
    is_multi[multi] = True
    sub_mask = is_multi[labels]
    ws = watershed(-fg, np.where(sub_mask, markers, 0), mask=sub_mask)
    labels[sub_mask] = ws[sub_mask] + n  # seed ids, offset past the component ids
    return labels


def _measure(labels, fg, f, shape, pixel_size_um, work_px_um, diameter_um,
             min_area_fraction, max_area_fraction, return_labels) -> Nuclei:
    n = int(labels.max())
    if n == 0:
        return Nuclei.empty(pixel_size_um, shape if return_labels else None)
    flat = labels.ravel()
    nz = np.flatnonzero(flat)
    lab = flat[nz]
    counts = np.bincount(lab, minlength=n + 1).astype(np.float64)
    h, w = labels.shape
    yy, xx = np.divmod(nz, w)
    sy = np.bincount(lab, weights=yy, minlength=n + 1)
    sx = np.bincount(lab, weights=xx, minlength=n + 1)
    si = np.bincount(lab, weights=fg.ravel()[nz], minlength=n + 1)
    border = np.zeros(n + 1, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        border[edge] = True
    area = counts * work_px_um**2
    expected = np.pi * (diameter_um / 2.0) ** 2
    keep = (area >= min_area_fraction * expected) & (area <= max_area_fraction * expected)
    keep[0] = False
    idx = np.flatnonzero(keep)
    c = counts[idx]
    y = (sy[idx] / c + 0.5) * f - 0.5
    x = (sx[idx] / c + 0.5) * f - 0.5
    full_labels = None
    if return_labels:
        lut = np.zeros(n + 1, np.int32)
        lut[idx] = np.arange(1, idx.size + 1, dtype=np.int32)
        small = lut[labels]
        if f > 1:
            small = np.repeat(np.repeat(small, f, axis=0), f, axis=1)
        full_labels = np.ascontiguousarray(small[: shape[0], : shape[1]])
    log.debug("found %d nuclei (%d objects before the size filter)", idx.size, n)
    return Nuclei(
        y=np.clip(y, 0, shape[0] - 1),
        x=np.clip(x, 0, shape[1] - 1),
        area_um2=area[idx],
        mean_intensity=si[idx] / c,
        touches_edge=border[idx],
        pixel_size_um=pixel_size_um,
        labels=full_labels,
    )
