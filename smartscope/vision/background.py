"""Frame statistics used by nucleus detection: block averaging, background and noise level."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks, as float32, shape ``ceil(shape / factor)``.

    Edge blocks that the frame does not fill are the mean of the pixels they hold. Rows are
    summed first (contiguous reads), then columns of the f-times smaller result: the frame is
    read about twice, whatever the factor, and never copied.
    """
    a = np.asarray(image)
    if factor == 1:
        return a.astype(np.float32)
    return _sum_axis(_sum_axis(a, factor, 0), factor, 1) * np.float32(1.0 / factor**2)


def _sum_axis(a: np.ndarray, f: int, axis: int) -> np.ndarray:
    """Sums of ``f`` consecutive rows (axis 0) or columns (axis 1), float32; a partial last
    group is scaled up to ``f`` elements (its mean times ``f``)."""
    n = a.shape[axis]
    full = n // f
    rem = n - full * f

    def part(i: int, stop: int) -> np.ndarray:
        return a[i:stop:f] if axis == 0 else a[:, i:stop:f]

    if full:
        out = part(0, full * f).astype(np.float32)
        for i in range(1, f):
            out += part(i, full * f)
    if rem:
        tail = a[full * f:] if axis == 0 else a[:, full * f:]
        last = tail.sum(axis=axis, dtype=np.float32, keepdims=True) * np.float32(f / rem)
        out = np.concatenate([out, last], axis=axis) if full else last
    return out


def _cells(n_px: int, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell index of every pixel along one axis (the last cell takes the remainder) and the
    centre of each cell, px."""
    n_cells = max(1, n_px // cell)
    index = np.minimum(np.arange(n_px) // cell, n_cells - 1)
    starts = np.arange(n_cells) * cell
    ends = np.append(starts[1:], n_px)
    return index, (starts + ends - 1) / 2.0


def estimate_background(work: np.ndarray, cell_px: int, percentile: float = 10.0) -> np.ndarray:
    """Smooth background of a (smoothed) working-scale image.

    First a low percentile per grid cell, median filtered over neighbouring cells (a cell crowded
    with nuclei follows its neighbours) and interpolated bilinearly, extrapolated linearly at the
    edges. Then, on the residual, the mean of the pixels that look like background (below
    ~2.7 noise sigmas above it) per cell corrects the first estimate: a percentile is biased low
    where the background has a gradient, a mean of background pixels is not.
    """
    h, w = work.shape
    if min(h, w) < 4:  # too small for a grid: one level
        return np.full(work.shape, np.percentile(work, percentile), np.float32)
    cell = int(max(4, min(cell_px, h, w)))
    iy, cy = _cells(h, cell)
    ix, cx = _cells(w, cell)
    gh, gw = cy.size, cx.size
    # pass 1: percentile over the whole cells (the remainder strip is left out here)
    step = 2 if cell >= 8 else 1  # every other pixel of a cell is enough for a percentile
    blocks = work[: gh * cell, : gw * cell].reshape(gh, cell, gw, cell)[:, ::step, :, ::step]
    blocks = blocks.transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    k = int(round(percentile / 100.0 * (blocks.shape[-1] - 1)))
    grid = np.partition(blocks, k, axis=-1)[..., k].astype(np.float32)
    if min(gh, gw) >= 3:  # a cell crowded with nuclei (far above its neighbours) follows them
        med = ndi.median_filter(grid, size=3, mode="mirror")
        spread = float(np.median(np.abs(grid - med))) * 1.4826
        limit = med + 3.0 * spread + 3.0 * noise_sigma(work, cell)
        grid = np.minimum(grid, limit)
    inner_c = (np.arange(gh) * cell + (cell - 1) / 2.0, np.arange(gw) * cell + (cell - 1) / 2.0)
    bg = _interp_grid(grid, inner_c[0], inner_c[1], h, w)
    # pass 2 (twice): mean of background-looking pixels per cell (every pixel is in a cell)
    group = (iy[:, None] * gw + ix[None, :]).ravel()
    for _ in range(2):
        residual = work - bg
        base = float(np.percentile(residual[::2, ::2], percentile))  # ~1.28 sigma below mean
        cutoff = base + 4.0 * noise_sigma(residual, cell) + 1e-6 * max(1.0, abs(base))
        is_bg = (residual < cutoff).ravel()
        count = np.bincount(group[is_bg], minlength=gh * gw)
        total = np.bincount(group[is_bg], weights=residual.ravel()[is_bg], minlength=gh * gw)
        correction = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        bg = bg + _interp_grid(correction.reshape(gh, gw).astype(np.float32), cy, cx, h, w)
    return bg


def _interp_grid(grid: np.ndarray, cy: np.ndarray, cx: np.ndarray, h: int, w: int) -> np.ndarray:
    """Separable bilinear interpolation of values at grid centres ``cy`` x ``cx`` to (h, w),
    extrapolated linearly beyond the outer centres (a gradient continues to the edge)."""

    def weights(centres: np.ndarray, n_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.arange(n_px, dtype=np.float64)
        if centres.size == 1:
            zero = np.zeros(n_px, np.intp)
            return zero, zero, np.zeros(n_px, np.float32)
        i0 = np.clip(np.searchsorted(centres, t) - 1, 0, centres.size - 2)
        frac = (t - centres[i0]) / (centres[i0 + 1] - centres[i0])
        return i0, i0 + 1, frac.astype(np.float32)

    x0, x1, fx = weights(cx, w)
    rows = grid[:, x0] * (1 - fx) + grid[:, x1] * fx  # (gh, w)
    y0, y1, fy = weights(cy, h)
    fy = fy[:, None]
    return (rows[y0] * (1 - fy) + rows[y1] * fy).astype(np.float32)


def noise_sigma(fg: np.ndarray, cell_px: int) -> float:
    """Noise (standard deviation) of a background-subtracted image, measured where it is flat.

    In every grid cell the spread between the 10th and 30th percentiles is 0.757 sigma for pure
    background; the lower quartile over cells ignores cells crowded with nuclei. This measures
    the noise after smoothing, whatever its spatial correlation.
    """
    h, w = fg.shape
    if min(h, w) < 4:  # too small for cells: the whole image is one
        lo, hi = np.percentile(fg, [10, 30])
        return float(hi - lo) / 0.757
    cell = int(max(4, min(cell_px, h, w)))
    gh, gw = h // cell, w // cell
    step = 2 if cell >= 8 else 1  # every other pixel of a cell is enough for a percentile
    blocks = fg[: gh * cell, : gw * cell].reshape(gh, cell, gw, cell)[:, ::step, :, ::step]
    blocks = blocks.transpose(0, 2, 1, 3).reshape(gh * gw, -1)
    n = blocks.shape[1]
    k10, k30 = int(0.1 * (n - 1)), int(0.3 * (n - 1))
    part = np.partition(blocks, (k10, k30), axis=1)
    spread = (part[:, k30] - part[:, k10]) / 0.757
    return float(np.percentile(spread, 25))
