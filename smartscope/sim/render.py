"""Turns the virtual sample into camera frames.

Geometry: the optical axis passes through the centre of the sensor, pixel-index position (row
``(H - 1) / 2``, column ``(W - 1) / 2``) (pixel 0 is centred on 0; for an even size that is the
corner shared by the four middle pixels), and looks at the stage position; a cell at stage (x, y)
um appears at column ``(W - 1) / 2 + (x - X) / p`` and row ``(H - 1) / 2 + (y - Y) / p`` (p = pixel
size of the current objective). So to centre a cell seen at (col, row), move the stage to
``X + (col - (W - 1) / 2) * p, Y + (row - (H - 1) / 2) * p``: the convention of
``smartscope.decide.geometry``.

Photometry: fluorescence densities (1 = mean of an interphase nucleus) times
``nucleus_counts_per_ms`` x channel gain x objective brightness x exposure, plus background, times
a slight vignetting; then shot noise (Gaussian approximation of Poisson in electrons), read noise,
the camera offset, rounding and clipping to uint16.

Defocus: each sprite is blurred with a Gaussian of sigma ``sqrt(psf^2 + (0.6 NA dz)^2)`` um,
where psf = 0.11 um / NA and dz is the distance from the objective's focal plane.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from smartscope import phases
from smartscope.sim import sprites
from smartscope.sim.bank import INTRINSIC_BLUR_UM, NucleusBank
from smartscope.sim.config import SimConfig
from smartscope.sim.sample import CellTruth

#: Memory the sprite cache may hold (bytes); least recently used sprites go first.
CACHE_BYTES = 256 * 1024 * 1024
_MAX_BLUR_UM = 25.0


@dataclass(frozen=True, slots=True)
class View:
    """What the microscope looks at when the camera snaps."""

    stage_x_um: float
    stage_y_um: float
    z_um: float
    objective: str
    channel: str
    exposure_ms: float
    light_on: bool
    shape: tuple[int, int]


def pixel_positions(cells: list[CellTruth], x_um: float, y_um: float, pixel_size_um: float,
                    shape: tuple[int, int]) -> list[CellTruth]:
    """Copies of ``cells`` with ``col_px``/``row_px`` set for a camera at stage (x, y)."""
    h, w = shape
    out = []
    for c in cells:
        col = (w - 1) / 2 + (c.x_um - x_um) / pixel_size_um
        row = (h - 1) / 2 + (c.y_um - y_um) / pixel_size_um
        out.append(CellTruth(c.id, c.parent_id, c.x_um, c.y_um, c.phase, c.phase_elapsed_s,
                             c.phase_duration_s, c.angle_rad, c.size, c.brightness, col, row))
    return out


#: How many distinct looks a cell has within a phase (the sprite cache keys on the step).
_PROGRESS_STEPS = {
    phases.INTERPHASE: 4, phases.PROPHASE: 3, phases.ANAPHASE: 8, phases.TELOPHASE: 6,
}


def _progress_key(c: CellTruth) -> int:
    n = _PROGRESS_STEPS.get(c.phase, 1)
    return min(n - 1, int(c.progress * n))


#: Daughter nuclei start small and reach full size over this time (sim s), in steps.
_G1_GROWTH_S = 2 * 3600.0
_G1_STEPS = 6
_G1_START_SIZE = 0.7


def _growth_key(c: CellTruth) -> int:
    """Early-G1 growth step of a young interphase nucleus (0 = just born, _G1_STEPS = grown)."""
    if c.phase != phases.INTERPHASE or c.parent_id is None:
        return _G1_STEPS
    return min(_G1_STEPS, int(_G1_STEPS * c.phase_elapsed_s / _G1_GROWTH_S))


def _growth(step: int) -> float:
    return _G1_START_SIZE + (1.0 - _G1_START_SIZE) * step / _G1_STEPS


def _paste(out: np.ndarray, spr: np.ndarray, r0: int, c0: int, weight: float) -> None:
    """out[r0:, c0:] += weight * spr, clipped to out."""
    h, w = out.shape
    r1, c1 = r0 + spr.shape[0], c0 + spr.shape[1]
    rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
    if rr0 < rr1 and cc0 < cc1 and weight > 0:
        out[rr0:rr1, cc0:cc1] += np.float32(weight) * spr[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0]


def _paste_subpixel(out: np.ndarray, spr: np.ndarray, col: float, row: float) -> None:
    """Add an odd square sprite centred at the (fractional) pixel (col, row), bilinearly."""
    half = spr.shape[0] // 2
    ci, ri = math.floor(col), math.floor(row)
    fx, fy = col - ci, row - ri
    r0, c0 = ri - half, ci - half
    _paste(out, spr, r0, c0, (1 - fx) * (1 - fy))
    _paste(out, spr, r0, c0 + 1, fx * (1 - fy))
    _paste(out, spr, r0 + 1, c0, (1 - fx) * fy)
    _paste(out, spr, r0 + 1, c0 + 1, fx * fy)


class Renderer:
    """Draws frames from ground truth; caches one sprite per cell, phase, objective and blur.

    Parameters
    ----------
    config : SimConfig
    bank : NucleusBank or None
        Real crops to draw nuclei from (procedural sprites for phases it lacks).
    """

    def __init__(self, config: SimConfig, bank: NucleusBank | None = None) -> None:
        self._config = config
        self._bank = bank
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._flat: dict[tuple[int, int], np.ndarray] = {}
        self._pools: dict[tuple[int, int], np.ndarray] = {}

    # -- sprites ----------------------------------------------------------------------------

    def blur_sigma_um(self, objective: str, z_um: float) -> float:
        """Gaussian blur (um) of a point at the sample for this objective and focus position."""
        spec = self._config.objectives[objective]
        dz = z_um - self._config.focal_plane_um(objective)
        psf = 0.11 / spec.na
        return min(_MAX_BLUR_UM, math.sqrt(psf**2 + (0.6 * spec.na * dz) ** 2))

    def _sprite(self, c: CellTruth, kind: str, objective: str, blur_um: float) -> np.ndarray:
        ps = self._config.objectives[objective].pixel_size_um
        sigma_px = blur_um / ps
        blur_key = round(math.log(sigma_px), 1) if sigma_px > 0.4 else 0.0
        grow = _growth_key(c)
        key = (c.id, c.phase, _progress_key(c), grow, kind, objective, blur_key)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        progress = (_progress_key(c) + 0.5) / _PROGRESS_STEPS.get(c.phase, 1)
        seed = (self._config.seed * 1_000_003 + c.id) & 0x7FFFFFFF
        size = c.size * _growth(grow)
        if kind == "chromatin" and self._bank is not None and self._bank.has(c.phase):
            img = self._bank.chromatin(c.phase, c.id, c.angle_rad, ps, size)
            # the crops already carry the blur of the optics that recorded them
            sigma_px = math.sqrt(max(0.0, blur_um**2 - INTRINSIC_BLUR_UM**2)) / ps
        elif kind == "chromatin":
            img = sprites.chromatin(c.phase, progress, size, c.angle_rad, seed, ps)
        else:
            img = sprites.cell_body(c.phase, progress, size, c.angle_rad, seed, ps)
        if kind == "chromatin":
            img = img * np.float32(c.brightness)
        if sigma_px > 0.4:
            from scipy import ndimage

            pad = int(math.ceil(3 * sigma_px))
            img = ndimage.gaussian_filter(np.pad(img, pad), sigma_px, truncate=3.0)
        img = img.astype(np.float32)
        self._cache[key] = img
        self._cache_bytes += img.nbytes
        while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.nbytes
        return img

    def _flat_field(self, shape: tuple[int, int]) -> np.ndarray:
        if shape not in self._flat:
            h, w = shape
            yy = (np.arange(h, dtype=np.float32) - h / 2) / (max(h, w) / 2)
            xx = (np.arange(w, dtype=np.float32) - w / 2) / (max(h, w) / 2)
            self._flat[shape] = 1.0 - 0.12 * (yy[:, None] ** 2 + xx[None, :] ** 2) / 2
        return self._flat[shape]

    # -- frames -----------------------------------------------------------------------------

    def density(self, view: View, cells: list[CellTruth], kind: str) -> np.ndarray:
        """Sum of ``kind`` ("chromatin" or "body") sprites of the cells in view (float32)."""
        cfg = self._config
        ps = cfg.objectives[view.objective].pixel_size_um
        h, w = view.shape
        out = np.zeros((h, w), dtype=np.float32)
        blur = self.blur_sigma_um(view.objective, view.z_um)
        margin = (sprites.SPRITE_RADIUS_UM * 1.5 + 3 * blur) / ps
        for c in cells:
            col = (w - 1) / 2 + (c.x_um - view.stage_x_um) / ps
            row = (h - 1) / 2 + (c.y_um - view.stage_y_um) / ps
            if not (-margin < col < w + margin and -margin < row < h + margin):
                continue
            _paste_subpixel(out, self._sprite(c, kind, view.objective, blur), col, row)
        return out

    def expected(self, view: View, cells: list[CellTruth]) -> np.ndarray:
        """Mean signal above the camera offset (ADU, float32), before noise."""
        cfg = self._config
        ch = cfg.channels[view.channel]
        if not view.light_on:
            return np.zeros(view.shape, dtype=np.float32)
        flat = self._flat_field(view.shape)
        if ch.brightfield:
            body = self.density(view, cells, "body")
            trans = np.clip(1.0 - ch.body_gain * body, 0.05, None)
            return (cfg.brightfield_counts_per_ms * view.exposure_ms) * flat * trans
        scale = (cfg.nucleus_counts_per_ms * cfg.objectives[view.objective].brightness
                 * view.exposure_ms)
        if ch.chromatin_gain > 0:
            sig = self.density(view, cells, "chromatin")
            sig *= np.float32(ch.chromatin_gain * scale)
        else:
            sig = np.zeros(view.shape, dtype=np.float32)
        if ch.body_gain > 0:
            body = self.density(view, cells, "body")
            body *= np.float32(ch.body_gain * scale)
            sig += body
        sig += np.float32(cfg.background_counts_per_ms * ch.background_gain * view.exposure_ms)
        sig *= flat
        return sig

    def frame(self, view: View, cells: list[CellTruth], rng: np.random.Generator) -> np.ndarray:
        """A noisy uint16 camera frame of ``view`` (shape ``view.shape``)."""
        cfg = self._config
        sig = self.expected(view, cells)
        g = np.float32(cfg.gain_adu_per_e)
        # shot noise in electrons (Gaussian approximation of Poisson) plus read noise, in ADU:
        # std = g * sqrt(sig / g + read_noise^2), computed in place
        std = sig * (np.float32(1.0) / g)
        std += np.float32(cfg.read_noise_e**2)
        np.sqrt(std, out=std)
        std *= g
        noise, sign = self._noise(view.shape, rng)
        std *= noise
        if sign > 0:
            sig += std
        else:
            sig -= std
        sig += np.float32(cfg.camera_offset_adu + 0.5)  # +0.5: truncation below rounds
        np.clip(sig, 0, 65535, out=sig)
        return sig.astype(np.uint16)

    def _noise(self, shape: tuple[int, int],
               rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Unit Gaussian noise for one frame, and a random sign (+1 or -1) to apply to it.

        Drawing 4 M normal numbers costs ~75 ms, so frames take a window at a random offset
        (and random sign) in a pool of twice the frame size, drawn once per frame shape.
        """
        n = shape[0] * shape[1]
        pool = self._pools.get(shape)
        if pool is None:
            pool = self._pools[shape] = rng.standard_normal(2 * n, dtype=np.float32)
        start = int(rng.integers(0, n))
        return pool[start:start + n].reshape(shape), (1 if rng.random() < 0.5 else -1)
