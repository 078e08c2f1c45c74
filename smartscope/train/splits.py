"""Subsampling, train/validation splits, k-fold and the batch-size rule (numpy only)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smartscope.errors import TrainingDataError
from smartscope.train.data import CropSet

log = logging.getLogger(__name__)


def subsample_per_class(data: CropSet, n_per_class: int, seed: int) -> CropSet:
    """Keep at most ``n_per_class`` crops of each class, drawn with ``seed``.

    A class with fewer crops keeps them all (logged as a warning; the card records real counts).
    """
    if n_per_class < 1:
        raise TrainingDataError(f"labels_per_class (--labels-per-class) is {n_per_class}; "
                                "give 1 or more")
    rng = np.random.default_rng(seed)
    keep = []
    for k, name in enumerate(data.classes):
        idx = np.flatnonzero(data.y == k)
        if len(idx) < n_per_class:
            log.warning("class %s has %d crops, fewer than labels_per_class %d: using all",
                        name, len(idx), n_per_class)
        keep.append(rng.permutation(idx)[:n_per_class])
    return data.subset(np.sort(np.concatenate(keep)))


def subsample(data: CropSet, count: int, seed: int) -> CropSet:
    """Keep ``count`` crops drawn at random with ``seed`` (all of them if there are fewer)."""
    if count < 1:
        raise TrainingDataError(f"unlabelled_count (--unlabelled-count) is {count}; "
                                "give 1 or more")
    if count >= len(data):
        return data
    rng = np.random.default_rng(seed)
    return data.subset(np.sort(rng.permutation(len(data))[:count]))


def stratified_split(
    y: np.ndarray, val_fraction: float, seed: int, groups: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, validation), stratified by class, whole groups to one side.

    Each class puts about ``round(n * val_fraction)`` crops in validation, at least one when it
    has two or more crops, and always keeps at least one for training. With ``groups`` (one name
    per crop: the same cell across frames) a group's crops all go to the same side; groups are
    drawn at random (seeded) within each group's majority class until the class has its share.
    """
    rng = np.random.default_rng(seed)
    if not len(groups):
        groups = [str(i) for i in range(len(y))]
    names, gidx = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(gidx == g) for g in range(len(names))]
    major = np.array([np.bincount(y[m]).argmax() for m in members])
    in_val = np.zeros(len(y), dtype=bool)
    for k in np.unique(y):
        n = int(np.sum(y == k))
        want = min(max(int(round(n * val_fraction)), 1 if n >= 2 else 0), n - 1)
        taken = 0
        for g in rng.permutation(np.flatnonzero(major == k)):
            if taken >= want:
                break
            size_k = int(np.sum(y[members[g]] == k))
            if taken + size_k > n - 1:
                continue
            in_val[members[g]] = True
            taken += size_k
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def stratified_folds(
    y: np.ndarray, k: int, seed: int, classes: Sequence[str] = (), folder: Path | None = None,
    groups: Sequence[str] = (),
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold: a list of (train indices, held-out indices), one pair per fold.

    With ``groups`` (one name per crop: the same cell across frames) a group's crops share a
    fold; groups are dealt to folds per majority class, largest first, into the fold that holds
    fewest crops of that class.

    Raises
    ------
    TrainingDataError
        If ``k`` < 2 or a class has fewer crops than folds.
    """
    if k < 2:
        raise TrainingDataError(f"folds (--folds) is {k}; give 2 or more (or 0 for no k-fold "
                                "report)")
    for c in np.unique(y):
        n = int(np.sum(y == c))
        if n < k:
            name = classes[c] if len(classes) > c else str(c)
            where = f"{Path(folder) / name}: " if folder is not None else f"class '{name}': "
            raise TrainingDataError(
                f"{where}{n} crops, fewer than folds (--folds {k}); add crops or lower folds"
            )
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    if len(groups):
        names, gidx = np.unique(np.asarray(groups), return_inverse=True)
        members = [np.flatnonzero(gidx == g) for g in range(len(names))]
        major = np.array([np.bincount(y[m]).argmax() for m in members])
        for c in np.unique(major):
            load = np.zeros(k)
            gs = rng.permutation(np.flatnonzero(major == c))
            for g in sorted(gs, key=lambda g: -len(members[g])):
                f = int(np.argmin(load + rng.random(k) * 1e-3))
                fold_of[members[g]] = f
                load[f] += len(members[g])
        return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = (np.arange(len(idx)) + rng.integers(k)) % k
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]


def batch_size_rule(n_labelled: int, cap: int = 100) -> int:
    """The paper's batch size: N_B = min(cap, floor(N_labelled / 2)), at least 2.

    Supervised batches hold N_B crops; each unsupervised batch holds N_B / 2 real and N_B / 2
    generated crops.

    Raises
    ------
    TrainingDataError
        If there are fewer than 4 labelled training crops.
    """
    if n_labelled < 4:
        raise TrainingDataError(
            f"only {n_labelled} labelled training crops; label at least 4 (a few dozen per class)"
        )
    return max(2, min(cap, n_labelled // 2))


def crop_sources(data: CropSet) -> list[str]:
    """The labelled folder of each crop (the prefix ``merge_sets`` gives its file names)."""
    return [f.rsplit("/", 2)[0] if f.count("/") >= 2 else "" for f in data.files]


def balanced_probabilities(y: np.ndarray, sources: Sequence[str]) -> np.ndarray:
    """Draw probabilities: each class 1/K, shared equally by the folders that hold it, and
    equally by the crops of one class in one folder."""
    y = np.asarray(y)
    src = np.asarray(sources)
    classes = np.unique(y)
    p = np.zeros(len(y))
    for k in classes:
        in_k = y == k
        folders = np.unique(src[in_k])
        for f in folders:
            m = in_k & (src == f)
            p[m] = 1.0 / (len(classes) * len(folders) * m.sum())
    return p / p.sum()
