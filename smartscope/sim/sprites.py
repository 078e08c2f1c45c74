"""Procedural H2B-GFP nuclei and cell bodies, drawn in micrometres at any pixel size.

Every shape is a sum of analytic pieces (soft ellipses, soft bars, Gaussian chromatin domains)
placed in the cell's own frame, so the same cell drawn at 10x and at 60x is the same object
magnified. Values are signal densities relative to the mean of an interphase nucleus (1.0).

Shapes per phase (sizes for HeLa, from the real frames at 10x):
interphase: textured ellipse, ~20 x 15 um, dark nucleoli, growing through the cycle;
prophase: same outline, speckled condensing chromatin, brighter;
prometaphase: compact irregular cluster, ~9 um;
metaphase: a bright bar (the plate), ~13 x 3 um, perpendicular to the spindle axis;
anaphase: two bars moving apart along the spindle axis (3 -> 9 um);
telophase: two compact, decondensing daughter nuclei, 9 -> 12 um apart;
apoptosis: a cluster of small, very bright round fragments.
"""

from __future__ import annotations

import math

import numpy as np

from smartscope import phases

#: Mean density (relative to interphase) of each phase's chromatin.
PHASE_BRIGHTNESS: dict[str, float] = {
    phases.INTERPHASE: 1.0,
    phases.PROPHASE: 1.35,
    phases.PROMETAPHASE: 2.2,
    phases.METAPHASE: 2.6,
    phases.ANAPHASE: 2.6,
    phases.TELOPHASE: 2.0,
    phases.APOPTOSIS: 2.8,
}

#: Half-axes (um) of an average interphase nucleus.
NUCLEUS_HALF_AXES_UM = (9.6, 7.0)

#: Radius (um) around the cell centre that any sprite can cover, before blur, at size 1.
SPRITE_RADIUS_UM = 17.0


class _Grid:
    """Pixel-centre coordinates (um) of an odd square sprite centred on the cell.

    ``x``/``y`` are sample coordinates (columns/rows), ``u``/``v`` the cell frame (u along the
    cell's angle).
    """

    def __init__(self, pixel_size_um: float, radius_um: float, angle_rad: float) -> None:
        half = int(math.ceil(radius_um / pixel_size_um))
        self.ax = np.arange(-half, half + 1, dtype=np.float32) * np.float32(pixel_size_um)
        x, y = np.meshgrid(self.ax, self.ax)
        self.cos, self.sin = math.cos(angle_rad), math.sin(angle_rad)
        c, s = np.float32(self.cos), np.float32(self.sin)
        self.u, self.v = x * c + y * s, -x * s + y * c

    def zeros(self) -> np.ndarray:
        return np.zeros_like(self.u)


def _soft_ellipse(g: _Grid, a: float, b: float, edge_um: float = 0.5, cu: float = 0.0,
                  cv: float = 0.0, wobble: np.ndarray | None = None) -> np.ndarray:
    """Soft-edged ellipse; ``wobble`` rows (harmonic k, amplitude, phase) bend its outline."""
    du = (g.u - np.float32(cu)) / np.float32(a)
    dv = (g.v - np.float32(cv)) / np.float32(b)
    r = np.sqrt(du**2 + dv**2)
    if wobble is not None and len(wobble):
        theta = np.arctan2(dv, du)
        mod = np.ones_like(r)
        for k, amp, phase in wobble:
            mod += np.float32(amp) * np.cos(np.float32(k) * theta + np.float32(phase))
        r /= mod
    return 1.0 / (1.0 + np.exp(np.clip((r - 1.0) * np.float32(min(a, b) / edge_um), -30, 30)))


def _blobs(g: _Grid, centres: np.ndarray, sigmas: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Sum of isotropic Gaussians (centres in the cell frame), each drawn in a 3-sigma window."""
    out = g.zeros()
    ax = g.ax
    for (cu, cv), s, a in zip(centres, sigmas, amps, strict=True):
        cx = cu * g.cos - cv * g.sin
        cy = cu * g.sin + cv * g.cos
        i0, i1 = np.searchsorted(ax, [cx - 3 * s, cx + 3 * s])
        j0, j1 = np.searchsorted(ax, [cy - 3 * s, cy + 3 * s])
        if i0 >= i1 or j0 >= j1:
            continue
        gx = np.exp(-((ax[i0:i1] - np.float32(cx)) ** 2) / np.float32(2 * s * s))
        gy = np.exp(-((ax[j0:j1] - np.float32(cy)) ** 2) / np.float32(2 * s * s))
        out[j0:j1, i0:i1] += np.float32(a) * gy[:, None] * gx[None, :]
    return out


def _points_in_ellipse(rng: np.random.Generator, n: int, a: float, b: float) -> np.ndarray:
    r = np.sqrt(rng.uniform(0, 1, n))
    t = rng.uniform(0, 2 * np.pi, n)
    return np.stack([a * r * np.cos(t), b * r * np.sin(t)], axis=1)


def _textured_nucleus(g: _Grid, rng: np.random.Generator, a: float, b: float,
                      speckle: float) -> np.ndarray:
    wobble = np.stack([np.array([2.0, 3.0, 4.0]), rng.uniform(0.0, 0.09, 3),
                       rng.uniform(0, 2 * np.pi, 3)], axis=1)
    base = _soft_ellipse(g, a, b, edge_um=0.6, wobble=wobble)
    n = 40
    tex = _blobs(g, _points_in_ellipse(rng, n, a, b), rng.uniform(0.7, 1.6, n),
                 rng.normal(0.0, 0.22, n))
    if speckle > 0:
        m = 60
        tex += _blobs(g, _points_in_ellipse(rng, m, 0.9 * a, 0.9 * b), rng.uniform(0.3, 0.6, m),
                      rng.uniform(0.5, 1.2, m) * speckle)
    k = int(rng.integers(2, 5))
    nucleoli = _blobs(g, _points_in_ellipse(rng, k, 0.5 * a, 0.5 * b), rng.uniform(0.8, 1.3, k),
                      np.full(k, 0.3))
    return base * np.clip(1.0 + tex - nucleoli, 0.2, None)


def _bar(g: _Grid, rng: np.random.Generator, half_len: float,
         half_width: float, cu: float = 0.0) -> np.ndarray:
    """A plate of condensed chromosomes: long along v, thin along u, centred at u=cu."""
    plate = _soft_ellipse(g, half_width, half_len, edge_um=0.35, cu=cu)
    n = 14
    pts = np.stack([cu + rng.normal(0, 0.4 * half_width, n),
                    rng.uniform(-0.9 * half_len, 0.9 * half_len, n)], axis=1)
    return plate * 0.7 + _blobs(g, pts, rng.uniform(0.5, 0.9, n), rng.uniform(0.3, 0.6, n))


def chromatin(phase: str, progress: float, size: float, angle_rad: float, seed: int,
              pixel_size_um: float) -> np.ndarray:
    """Chromatin density of one nucleus on an odd square grid centred on the cell (float32).

    Parameters
    ----------
    phase : str
        A name from ``smartscope.phases.ALL_PHASES``.
    progress : float
        Fraction of the phase done (0..1): chromosomes separate in anaphase, the nucleus grows
        in interphase.
    size : float
        Relative size of this cell (1 = average HeLa nucleus).
    angle_rad : float
        Cell orientation (long axis of the nucleus, spindle axis in mitosis).
    seed : int
        Texture seed (one per cell, so a cell keeps its look).
    pixel_size_um : float
        Pixel size to draw at.
    """
    rng = np.random.default_rng(seed)
    g = _Grid(pixel_size_um, SPRITE_RADIUS_UM * size, angle_rad)
    a0, b0 = NUCLEUS_HALF_AXES_UM
    a0, b0 = a0 * size, b0 * size
    if phase == phases.INTERPHASE:
        grow = math.sqrt(0.8 + 0.4 * progress)
        img = _textured_nucleus(g, rng, a0 * grow, b0 * grow, speckle=0.0)
    elif phase == phases.PROPHASE:
        img = _textured_nucleus(g, rng, 0.85 * a0, 0.95 * b0, speckle=0.6 + 0.8 * progress)
    elif phase == phases.PROMETAPHASE:
        n = 26
        r = 4.8 * size
        pts = _points_in_ellipse(rng, n, r * 0.9, r * 0.8)
        img = 0.3 * _soft_ellipse(g, r * 0.8, r * 0.9, edge_um=0.8)
        img += _blobs(g, pts, rng.uniform(0.5, 1.0, n), rng.uniform(0.4, 0.9, n))
    elif phase == phases.METAPHASE:
        img = _bar(g, rng, 6.0 * size, 1.8 * size)
    elif phase == phases.ANAPHASE:
        half_sep = (1.5 + 3.0 * progress) * size
        img = _bar(g, rng, 5.5 * size, 1.1 * size, cu=-half_sep)
        img += _bar(g, rng, 5.5 * size, 1.1 * size, cu=half_sep)
    elif phase == phases.TELOPHASE:
        half_sep = (4.5 + 1.5 * progress) * size
        a, b = (2.3 + 1.2 * progress) * size, (3.6 + 1.0 * progress) * size
        img = g.zeros()
        for cu in (-half_sep, half_sep):
            img += _soft_ellipse(g, a, b, edge_um=0.5, cu=cu)
            pts = _points_in_ellipse(rng, 10, a * 0.8, b * 0.8) + np.array([cu, 0.0])
            img += _blobs(g, pts, rng.uniform(0.5, 1.0, 10), rng.uniform(0.1, 0.3, 10))
    elif phase == phases.APOPTOSIS:
        n = int(rng.integers(5, 10))
        pts = _points_in_ellipse(rng, n, 5.5 * size, 5.5 * size)
        img = g.zeros()
        for (cu, cv), r in zip(pts, rng.uniform(0.7, 1.8, n), strict=True):
            img += _soft_ellipse(g, r, r, edge_um=0.25, cu=cu, cv=cv)
    else:
        raise ValueError(f"unknown phase {phase!r}: use a name from smartscope.phases.ALL_PHASES")
    return _normalise(img, PHASE_BRIGHTNESS[phase])


def _normalise(img: np.ndarray, brightness: float) -> np.ndarray:
    """Scale so that the mean over the bright half of the object equals ``brightness``."""
    img = np.clip(img, 0, None).astype(np.float32)
    peak = float(img.max())
    if peak <= 0:
        return img
    inside = img[img > 0.3 * peak]
    return img * np.float32(brightness / float(inside.mean()))


def cell_body(phase: str, progress: float, size: float, angle_rad: float, seed: int,
              pixel_size_um: float) -> np.ndarray:
    """Whole-cell (cytoplasm) density on the same grid as ``chromatin`` (float32, mean ~1)."""
    rng = np.random.default_rng(seed + 7919)
    g = _Grid(pixel_size_um, SPRITE_RADIUS_UM * size, angle_rad)
    if phase == phases.INTERPHASE:
        img = _soft_ellipse(g, 15.5 * size, 12.0 * size, edge_um=1.0)
    elif phase in (phases.ANAPHASE, phases.TELOPHASE):
        half_sep = (3.0 + 4.0 * progress) * size
        img = np.maximum(_soft_ellipse(g, 8.5 * size, 9.5 * size, cu=-half_sep),
                         _soft_ellipse(g, 8.5 * size, 9.5 * size, cu=half_sep))
    elif phase == phases.APOPTOSIS:
        img = _soft_ellipse(g, 7.0 * size, 6.5 * size, edge_um=0.8)
    else:  # cells round up in mitosis
        img = _soft_ellipse(g, 10.5 * size, 10.5 * size, edge_um=0.6)
    n = 25
    tex = _blobs(g, _points_in_ellipse(rng, n, 11 * size, 9 * size), rng.uniform(1.0, 2.5, n),
                 rng.normal(0, 0.3, n))
    return (img * np.clip(1.0 + tex, 0.3, None)).astype(np.float32)
