"""In which order a person sees the crops of a pool.

With class probabilities (a model run over the pool, or the run that classified the crops), the
least certain crops come first: by margin (1 minus the gap between the two most likely classes)
or by normalised entropy. Without them, bright and small nuclei come first: condensed mitotic
chromatin is brighter than an interphase nucleus and, from prometaphase to telophase, smaller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from smartscope.label.pool import PoolItem, read_crop

log = logging.getLogger(__name__)

Uncertainty = Literal["margin", "entropy"]

SIZE_WEIGHT = 0.5
"""Weight of smallness against brightness in the order without a model (ranks, 0 to 1 each)."""


def uncertainty(probabilities: np.ndarray, method: Uncertainty = "margin") -> np.ndarray:
    """Per-row uncertainty of class probabilities (N, K), 0 (sure) to 1 (no idea).

    ``margin``: 1 - (p_first - p_second); ``entropy``: entropy / log(K).
    """
    p = np.clip(np.asarray(probabilities, np.float64), 0.0, 1.0)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities have shape {p.shape}; give (N, K) with K >= 2")
    if method == "margin":
        top = np.sort(p, axis=1)[:, -2:]
        return 1.0 - (top[:, 1] - top[:, 0])
    if method == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        return h / np.log(p.shape[1])
    raise ValueError(f"uncertainty method {method!r}: use 'margin' or 'entropy'")


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to 0..1 (ties share the mean rank)."""
    n = len(values)
    if n < 2:
        return np.zeros(n)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    for v in np.unique(values):  # ties: mean rank
        same = values == v
        if same.sum() > 1:
            ranks[same] = ranks[same].mean()
    return ranks / (n - 1)


def appearance_order(items: Sequence[PoolItem]) -> list[str]:
    """Crop ids, brightest and smallest first (score: rank of intensity + 0.5 x rank of -area)."""
    if not items:
        return []
    bright = _ranks(np.array([i.mean_intensity for i in items]))
    small = _ranks(-np.array([i.area_um2 for i in items]))
    score = bright + SIZE_WEIGHT * small
    return [items[k].crop_id for k in np.argsort(-score, kind="stable")]


def uncertainty_order(
    ids: Sequence[str], probabilities: np.ndarray, method: Uncertainty = "margin"
) -> list[str]:
    """Crop ids, least certain first."""
    u = uncertainty(probabilities, method)
    return [ids[k] for k in np.argsort(-u, kind="stable")]


def model_probabilities(
    items: Sequence[PoolItem], bundle: str, batch: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[tuple[str, ...], np.ndarray]:
    """Classify every crop of a pool with a model bundle (LiteRT, the package's preprocessing).

    Each crop is resampled from its pixel size (the ``dataset.json`` beside the crop files, else
    the geometry of ``smartscope crops``: 64 px over ``CROP_UM``) to the model's field.

    Returns
    -------
    (class names, probabilities (N, K))
    """
    from smartscope.classify.runtime import Classifier
    from smartscope.vision.crops import refield_crop
    from smartscope.vision.dataset import read_dataset_info
    from smartscope.vision.preprocess import CROP_UM, INPUT_SIZE, normalise

    clf = Classifier(bundle)
    crop_um = clf.card.input.crop_um
    pixel_size: dict[Path, float] = {}

    def prepared(item: PoolItem) -> np.ndarray:
        folder = item.path.parent
        if folder not in pixel_size:
            info = read_dataset_info(folder)
            pixel_size[folder] = info.pixel_size_um if info else CROP_UM / INPUT_SIZE
        return normalise(refield_crop(read_crop(item), pixel_size[folder], crop_um,
                                      clf.input_size))

    out = []
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        x = np.stack([prepared(i) for i in chunk])
        out.append(clf.predict(x[..., None]))
        if on_progress is not None:
            on_progress(min(start + batch, len(items)), len(items))
    probs = np.concatenate(out) if out else np.zeros((0, len(clf.classes)), np.float32)
    return tuple(clf.classes), probs
