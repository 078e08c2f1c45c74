"""Training data: read crop folders, hash them, subsample and split them (numpy only).

Folder formats
--------------
labelled folder
    One sub-folder per class, named after the class, holding crop files (``.tif``, ``.tiff``,
    ``.png``, ``.npy``) of any size and bit depth. Every crop goes through the shared
    preprocessing (:func:`smartscope.vision.preprocess.prepare_crop_file_array`).
unlabelled pool
    A flat folder of crop files, or an ``.npz`` file holding one array of crops ``(N, H, W)``.

Nothing here imports TensorFlow, so the checks on bad input are fast and testable on their own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smartscope.errors import ImageError, TrainingDataError
from smartscope.phases import ALL_PHASES
from smartscope.vision.preprocess import prepare_crop_file_array

log = logging.getLogger(__name__)

CROP_SUFFIXES = (".tif", ".tiff", ".png", ".npy")
"""File name endings read as crops (case-insensitive); other files in a folder are ignored."""


@dataclass(frozen=True)
class CropSet:
    """Crops ready for the model, with where they came from.

    Attributes
    ----------
    x : float32 array (N, 64, 64, 1) in [-1, 1]
    y : int array (N,) class indices into ``classes`` (all -1 for unlabelled crops)
    files : source of each crop (file path, or ``file.npz[i]``)
    classes : class names in model output order (empty for unlabelled crops)
    sha256 : one hash of the file names and contents behind this set
    """

    x: np.ndarray
    y: np.ndarray
    files: tuple[str, ...]
    classes: tuple[str, ...] = ()
    sha256: str = ""
    file_hashes: dict[str, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: np.ndarray | Sequence[int]) -> CropSet:
        """The crops at ``idx`` (the set hash is recomputed from their file hashes)."""
        idx = np.asarray(idx, dtype=int)
        files = tuple(self.files[i] for i in idx)
        hashes = {f: self.file_hashes[f] for f in files if f in self.file_hashes}
        return CropSet(self.x[idx], self.y[idx], files, self.classes, _set_hash(hashes), hashes)

    def counts(self) -> dict[str, int]:
        """Number of crops per class name."""
        return {c: int(np.sum(self.y == i)) for i, c in enumerate(self.classes)}


def _is_crop_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and (
        path.suffix.lower() in CROP_SUFFIXES
    )


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def _set_hash(file_hashes: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(file_hashes):
        h.update(f"{Path(name).name}\t{file_hashes[name]}\n".encode())
    return h.hexdigest()


def _non_finite(arr: np.ndarray) -> int:
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))


def read_crop_file(path: Path) -> tuple[np.ndarray, str]:
    """Read one crop file and prepare it; returns (64x64 float32 in [-1, 1], sha256 of the bytes).

    Raises
    ------
    TrainingDataError
        If the file cannot be read or is not a 2-D grey image.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TrainingDataError(f"{path}: cannot read the file ({e}); fix or remove it") from e
    digest = hashlib.sha256(raw).hexdigest()
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            from skimage.io import imread

            arr = imread(path)
    except Exception as e:  # each reader raises its own types for corrupt files
        raise TrainingDataError(
            f"{path}: unreadable crop file ({type(e).__name__}); fix or remove it"
        ) from e
    arr = np.asarray(arr)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise TrainingDataError(
            f"{path}: {_non_finite(arr)} of {arr.size} pixels are NaN or infinite; such a crop "
            "makes the training loss NaN; fix or remove the file"
        )
    try:
        return prepare_crop_file_array(arr), digest
    except ImageError as e:
        raise TrainingDataError(f"{path}: {e}; fix or remove it") from e


def _order_classes(names: Sequence[str]) -> list[str]:
    """Known cell-cycle phases first in cycle order, then other names alphabetically."""
    known = [p for p in ALL_PHASES if p in names]
    return known + sorted(n for n in names if n not in ALL_PHASES)


def class_folders(folder: Path, classes: Sequence[str] | None = None) -> dict[str, Path]:
    """Map class name -> sub-folder of a labelled folder, checked.

    Parameters
    ----------
    folder : the labelled folder (one sub-folder per class)
    classes : the classes to use, in output order; default every sub-folder

    Raises
    ------
    TrainingDataError
        If the folder is missing, a named class folder is missing or holds no crop files, or
        fewer than two classes remain.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingDataError(
            f"{folder}: labelled folder not found; give a folder of class folders"
        )
    subs = {p.name: p for p in sorted(folder.iterdir()) if _is_folder(p)}
    if classes is None or len(classes) == 0:
        names = _order_classes(list(subs))
    else:
        names = list(dict.fromkeys(classes))
        for name in names:
            if name not in subs:
                raise TrainingDataError(
                    f"{folder / name}: class folder not found; create it or drop '{name}' from "
                    f"--classes (found: {', '.join(sorted(subs)) or 'none'})"
                )
    for name in names:
        if not any(_is_crop_file(p) for p in subs[name].iterdir()):
            raise TrainingDataError(
                f"{subs[name]}: class folder holds no crop files ({'/'.join(CROP_SUFFIXES)}); "
                "add crops or remove the folder"
            )
    if len(names) < 2:
        found = names[0] if names else "none"
        raise TrainingDataError(
            f"{folder}: needs at least two class folders with crops (found: {found}); "
            "add a folder per class"
        )
    return {name: subs[name] for name in names}


def _read_classes(folders: dict[str, Path], classes: Sequence[str]) -> CropSet:
    xs, ys, files, hashes = [], [], [], {}
    for name, sub in folders.items():
        k = list(classes).index(name)
        for path in sorted(p for p in sub.iterdir() if _is_crop_file(p)):
            arr, digest = read_crop_file(path)
            key = f"{name}/{path.name}"
            xs.append(arr)
            ys.append(k)
            files.append(key)
            hashes[key] = digest
    x = np.stack(xs)[..., None].astype(np.float32)
    return CropSet(x, np.asarray(ys, dtype=np.int64), tuple(files), tuple(classes),
                   _set_hash(hashes), hashes)


def load_labelled(folder: Path, classes: Sequence[str] | None = None) -> CropSet:
    """Read a labelled folder (one sub-folder per class) into a :class:`CropSet`.

    Parameters
    ----------
    folder : the labelled folder
    classes : class names to use, in model output order; default every sub-folder (cell-cycle
        phases first, in cycle order, then other names alphabetically)

    Raises
    ------
    TrainingDataError
        See :func:`class_folders` and :func:`read_crop_file`.
    """
    folders = class_folders(folder, classes)
    data = _read_classes(folders, tuple(folders))
    log.info("read %d labelled crops in %d classes from %s", len(data), len(folders), folder)
    return data


def load_test(folder: Path, classes: Sequence[str]) -> CropSet:
    """Read a held-out test folder, labelled with the *training* classes' indices.

    The test folder may hold a subset of the classes.

    Raises
    ------
    TrainingDataError
        If the folder is missing or empty, a test class folder is not one of ``classes`` (named
        in the message), or a file is unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingDataError(f"{folder}: test folder not found; give a folder of class folders")
    present = [p.name for p in sorted(folder.iterdir())
               if _is_folder(p) and any(map(_is_crop_file, p.iterdir()))]
    unknown = [c for c in present if c not in classes]
    if unknown:
        raise TrainingDataError(
            f"{folder / unknown[0]}: test class '{unknown[0]}' is not a training class "
            f"({', '.join(classes)}); remove the folder or train with it"
        )
    if not present:
        raise TrainingDataError(f"{folder}: test folder has no class folders with crop files")
    return _read_classes({c: folder / c for c in classes if c in present}, classes)


def load_unlabelled(source: Path) -> CropSet:
    """Read the unlabelled pool: a flat folder of crop files, or an ``.npz`` of crops (N, H, W).

    Raises
    ------
    TrainingDataError
        If the folder or file is missing, holds no crops, or a file is unreadable.
    """
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".npz":
        return _load_npz_pool(source)
    if not source.is_dir():
        raise TrainingDataError(
            f"{source}: unlabelled folder not found; give a flat folder of crops or an .npz file"
        )
    paths = sorted(p for p in source.iterdir() if _is_crop_file(p))
    if not paths:
        raise TrainingDataError(
            f"{source}: unlabelled folder holds no crop files ({'/'.join(CROP_SUFFIXES)}); "
            "add crops (the folder must be flat, no sub-folders)"
        )
    xs, hashes = [], {}
    for path in paths:
        arr, digest = read_crop_file(path)
        xs.append(arr)
        hashes[path.name] = digest
    files = tuple(p.name for p in paths)
    x = np.stack(xs)[..., None].astype(np.float32)
    log.info("read %d unlabelled crops from %s", len(x), source)
    return CropSet(x, np.full(len(x), -1, dtype=np.int64), files, (), _set_hash(hashes), hashes)


def _load_npz_pool(path: Path) -> CropSet:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            key = "crops" if "crops" in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise TrainingDataError(
                    f"{path}: .npz holds {keys}; store the crops under the key 'crops'"
                )
            arr = np.asarray(npz[key])
    except TrainingDataError:
        raise
    except Exception as e:
        raise TrainingDataError(f"{path}: unreadable .npz file ({type(e).__name__})") from e
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3 or len(arr) == 0:
        raise TrainingDataError(f"{path}: crops array has shape {arr.shape}; give (N, H, W)")
    if arr.dtype.kind in "fc":
        bad = np.flatnonzero(~np.isfinite(arr).reshape(len(arr), -1).all(axis=1))
        if len(bad):
            raise TrainingDataError(
                f"{path}: crops {', '.join(map(str, bad[:5]))}{' ...' if len(bad) > 5 else ''} "
                f"({len(bad)} of {len(arr)}) hold NaN or infinite pixels; such crops make the "
                "training loss NaN; remove them from the array"
            )
    try:
        x = np.stack([prepare_crop_file_array(a) for a in arr])[..., None].astype(np.float32)
    except ImageError as e:
        raise TrainingDataError(f"{path}: {e}") from e
    files = tuple(f"{path.name}[{i}]" for i in range(len(x)))
    hashes = {f: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
              for f, a in zip(files, arr, strict=True)}
    return CropSet(x, np.full(len(x), -1, dtype=np.int64), files, (), _set_hash(hashes), hashes)


def subsample_per_class(data: CropSet, n_per_class: int, seed: int) -> CropSet:
    """Keep at most ``n_per_class`` crops of each class, drawn with ``seed``.

    A class with fewer crops keeps them all (logged as a warning; the card records real counts).
    """
    if n_per_class < 1:
        raise TrainingDataError(f"--labels-per-class is {n_per_class}; give 1 or more")
    rng = np.random.default_rng(seed)
    keep = []
    for k, name in enumerate(data.classes):
        idx = np.flatnonzero(data.y == k)
        if len(idx) < n_per_class:
            log.warning("class %s has %d crops, fewer than --labels-per-class %d: using all",
                        name, len(idx), n_per_class)
        keep.append(rng.permutation(idx)[:n_per_class])
    return data.subset(np.sort(np.concatenate(keep)))


def subsample(data: CropSet, count: int, seed: int) -> CropSet:
    """Keep ``count`` crops drawn at random with ``seed`` (all of them if there are fewer)."""
    if count < 1:
        raise TrainingDataError(f"--unlabelled-count is {count}; give 1 or more")
    if count >= len(data):
        return data
    rng = np.random.default_rng(seed)
    return data.subset(np.sort(rng.permutation(len(data))[:count]))


def stratified_split(
    y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, validation), stratified by class.

    Each class puts ``round(n * val_fraction)`` crops in validation, at least one when it has two
    or more crops, and always keeps at least one for training.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        n_val = int(round(len(idx) * val_fraction))
        n_val = min(max(n_val, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stratified_folds(
    y: np.ndarray, k: int, seed: int, classes: Sequence[str] = (), folder: Path | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold: a list of (train indices, held-out indices), one pair per fold.

    Raises
    ------
    TrainingDataError
        If ``k`` < 2 or a class has fewer crops than folds.
    """
    if k < 2:
        raise TrainingDataError(f"--folds is {k}; give 2 or more (or 0 for no k-fold report)")
    for c in np.unique(y):
        n = int(np.sum(y == c))
        if n < k:
            name = classes[c] if len(classes) > c else str(c)
            where = f"{Path(folder) / name}: " if folder is not None else f"class '{name}': "
            raise TrainingDataError(
                f"{where}{n} crops, fewer than --folds {k}; add crops or lower --folds"
            )
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
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
