"""A bank of real, labelled nucleus crops that the renderer draws nuclei from.

File format (``.npz``): ``crops`` float32 (N, S, S), background-subtracted intensity at the 10x
reference pixel size; ``phases`` (N,) str from ``smartscope.phases``; ``pixel_size_um`` scalar.
Each cell gets one crop of its phase (chosen from its id, so it keeps it), rotated to the cell's
angle and resampled to the current pixel size. Phases missing from the bank are drawn
procedurally (``smartscope.sim.sprites``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from smartscope import phases
from smartscope.errors import MicroscopeError
from smartscope.sim.sprites import PHASE_BRIGHTNESS

log = logging.getLogger(__name__)

#: Blur (Gaussian sigma, um) already in the crops: the in-focus blur of the 10x / NA 0.3 optics
#: that recorded them (the renderer only adds blur beyond it).
INTRINSIC_BLUR_UM = 0.11 / 0.3

#: Where the packaged bank lives (inside the installed package).
PACKAGED_BANK = Path(__file__).resolve().parent / "data" / "nucleus_bank.npz"


class NucleusBank:
    """Real nucleus crops by phase.

    Parameters
    ----------
    crops : array (N, S, S)
        Background-subtracted intensities.
    phase_names : sequence of str, length N
    pixel_size_um : float
        Pixel size of the crops.

    Raises
    ------
    MicroscopeError
        If shapes disagree or a phase name is unknown.
    """

    def __init__(self, crops: np.ndarray, phase_names: np.ndarray, pixel_size_um: float) -> None:
        crops = np.asarray(crops, dtype=np.float32)
        names = np.asarray(phase_names).astype(str)
        if crops.ndim != 3 or crops.shape[1] != crops.shape[2] or len(names) != len(crops):
            raise MicroscopeError(
                f"nucleus bank has crops {crops.shape} and {len(names)} phases: give crops "
                "(N, S, S) and one phase per crop"
            )
        unknown = sorted(set(names) - set(phases.ALL_PHASES))
        if unknown:
            raise MicroscopeError(
                f"nucleus bank has unknown phases {unknown}: use names from smartscope.phases"
            )
        if not pixel_size_um > 0:
            raise MicroscopeError(f"nucleus bank pixel_size_um={pixel_size_um}: give a size > 0")
        self.pixel_size_um = float(pixel_size_um)
        self._raw = crops
        self._isolated: dict[int, np.ndarray] = {}
        self._by_phase = {p: np.flatnonzero(names == p) for p in set(names)}
        self._phase_level: dict[str, float] = {}
        ref_phase = phases.INTERPHASE if phases.INTERPHASE in self._by_phase else str(names[0])
        # densities relative to an interphase nucleus (1.0), like the procedural sprites
        self._scale = PHASE_BRIGHTNESS.get(ref_phase, 1.0) / self._median_level(ref_phase)

    def _median_level(self, phase: str) -> float:
        """Typical brightness of the crops of ``phase`` (median over up to 200 crops)."""
        if phase not in self._phase_level:
            levels = [self._level(self._crop(int(i))) for i in self._by_phase[phase][:200]]
            self._phase_level[phase] = float(np.median([x for x in levels if x > 0] or [1.0]))
        return self._phase_level[phase]

    def _crop(self, i: int) -> np.ndarray:
        if i not in self._isolated:
            self._isolated[i] = self._isolate(self._raw[i])
        return self._isolated[i]

    @staticmethod
    def _level(crop: np.ndarray) -> float:
        peak = float(crop.max())
        return float(crop[crop > 0.3 * peak].mean()) if peak > 0 else 0.0

    @staticmethod
    def _isolate(crop: np.ndarray) -> np.ndarray:
        """Keep the object at the centre of the crop; fade out neighbours and the border."""
        from scipy import ndimage

        crop = np.clip(crop, 0, None)
        peak = float(np.percentile(crop, 99.5))
        if peak <= 0:
            return crop
        labels, n = ndimage.label(crop > 0.2 * peak)
        if n == 0:
            return crop
        c = crop.shape[0] // 2
        yy, xx = np.mgrid[: crop.shape[0], : crop.shape[1]]
        dist = np.array([np.min((yy[labels == k] - c) ** 2 + (xx[labels == k] - c) ** 2)
                         for k in range(1, n + 1)])
        # an object and its partners (anaphase pairs, fragments) near the centre
        keep = np.isin(labels, 1 + np.flatnonzero(dist <= max(dist.min(), (0.2 * c) ** 2)))
        mask = ndimage.binary_dilation(keep, iterations=3)
        soft = ndimage.gaussian_filter(mask.astype(np.float32), 1.5)
        return (crop * soft).astype(np.float32)

    @classmethod
    def load(cls, path: Path) -> NucleusBank:
        """Read a bank file.

        Raises
        ------
        MicroscopeError
            If the file cannot be read or lacks ``crops``, ``phases`` or ``pixel_size_um``.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["crops"], z["phases"], float(z["pixel_size_um"]))
        except (OSError, KeyError, ValueError) as e:
            raise MicroscopeError(
                f"cannot read nucleus bank {path}: {e}; give an .npz with crops, phases and "
                "pixel_size_um, or set SimConfig.use_nucleus_bank=False"
            ) from e

    def has(self, phase: str) -> bool:
        """True when the bank holds crops of ``phase``."""
        return phase in self._by_phase

    def count(self, phase: str) -> int:
        """Number of crops of ``phase``."""
        return len(self._by_phase.get(phase, ()))

    def chromatin(self, phase: str, cell_id: int, angle_rad: float, pixel_size_um: float,
                  size: float = 1.0) -> np.ndarray:
        """The crop for this cell: rotated, resampled to ``pixel_size_um``, odd square (float32).

        Raises
        ------
        KeyError
            If the bank has no crop of ``phase`` (check ``has`` first).
        """
        from scipy import ndimage

        idx = self._by_phase[phase]
        rng = np.random.default_rng([cell_id, phases.ALL_PHASES.index(phase)])
        crop = self._crop(int(idx[rng.integers(len(idx))]))
        # keep the real brightness of each phase, but not outliers (dim, out-of-focus crops):
        # a crop's level is held within 0.6-1.6 x its phase's median
        med, level = self._median_level(phase), self._level(crop)
        gain = float(np.clip(level, 0.6 * med, 1.6 * med) / level) if level > 0 else 1.0
        rot = ndimage.rotate(crop, math.degrees(angle_rad), reshape=False, order=1, mode="constant")
        zoom = self.pixel_size_um * size / pixel_size_um
        out = ndimage.zoom(rot, zoom, order=1, mode="constant")
        if out.shape[0] % 2 == 0:  # odd side so that the centre is a pixel
            out = np.pad(out, ((0, 1), (0, 1)))
        return (np.clip(out, 0, None) * np.float32(self._scale * gain)).astype(np.float32)


def load_bank(path: Path | None, enabled: bool) -> NucleusBank | None:
    """The bank to render from: ``path``, else the packaged file if present, else None."""
    if not enabled:
        return None
    target = path if path is not None else PACKAGED_BANK
    if not target.is_file():
        if path is not None:
            raise MicroscopeError(
                f"nucleus bank {path} does not exist: fix SimConfig.nucleus_bank or set it to None"
            )
        log.info("no packaged nucleus bank; drawing every nucleus procedurally")
        return None
    bank = NucleusBank.load(target)
    log.info("nucleus bank %s: %s", target.name,
             {p: bank.count(p) for p in phases.ALL_PHASES if bank.has(p)})
    return bank
