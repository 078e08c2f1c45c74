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
from smartscope.outputs import overlaps
from smartscope.phases import ALL_PHASES
from smartscope.train.cropfiles import CROP_SUFFIXES as CROP_SUFFIXES  # re-exported
from smartscope.train.cropfiles import Geometry as Geometry  # re-exported
from smartscope.train.cropfiles import folder_geometry as folder_geometry  # re-exported
from smartscope.train.cropfiles import is_crop_file, warn_coverage
from smartscope.train.cropfiles import read_crop_file as read_crop_file  # re-exported
from smartscope.vision.dataset import read_groups

log = logging.getLogger(__name__)


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
    groups : per crop, the cell it belongs to (``groups.csv``; empty = every crop its own)
    """

    x: np.ndarray
    y: np.ndarray
    files: tuple[str, ...]
    classes: tuple[str, ...] = ()
    sha256: str = ""
    file_hashes: dict[str, str] = field(default_factory=dict, repr=False)
    groups: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: np.ndarray | Sequence[int]) -> CropSet:
        """The crops at ``idx`` (the set hash is recomputed from their file hashes)."""
        idx = np.asarray(idx, dtype=int)
        files = tuple(self.files[i] for i in idx)
        hashes = {f: self.file_hashes[f] for f in files if f in self.file_hashes}
        groups = tuple(self.groups[i] for i in idx) if self.groups else ()
        return CropSet(self.x[idx], self.y[idx], files, self.classes, _set_hash(hashes), hashes,
                       groups)

    def counts(self) -> dict[str, int]:
        """Number of crops per class name."""
        return {c: int(np.sum(self.y == i)) for i, c in enumerate(self.classes)}


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def _set_hash(file_hashes: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(file_hashes):
        h.update(f"{Path(name).name}\t{file_hashes[name]}\n".encode())
    return h.hexdigest()


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
                    f"the classes (--classes; found: {', '.join(sorted(subs)) or 'none'})"
                )
    for name in names:
        if not any(is_crop_file(p) for p in subs[name].iterdir()):
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


def _read_classes(folders: dict[str, Path], classes: Sequence[str], root: Path,
                  geo: Geometry) -> CropSet:
    xs, ys, files, hashes, raw_shape = [], [], [], {}, None
    group_of = read_groups(root)
    real: dict[Path, str] = {}
    for name, sub in folders.items():
        other = real.setdefault(sub.resolve(), name)
        if other != name:
            raise TrainingDataError(
                f"{sub}: is the same folder as class '{other}' (a link); the crops would carry "
                "two labels; give each class its own folder"
            )
    first: dict[str, tuple[str, Path]] = {}  # crop bytes -> (class, file)
    for name, sub in folders.items():
        k = list(classes).index(name)
        for path in sorted(p for p in sub.iterdir() if is_crop_file(p)):
            arr, digest = read_crop_file(path, geo)
            seen = first.setdefault(digest, (name, path))
            if seen[0] != name:
                raise TrainingDataError(
                    f"{path}: the same crop as {seen[1]} (byte for byte), labelled '{name}' "
                    f"here and '{seen[0]}' there; keep it in one class folder"
                )
            key = f"{name}/{path.name}"
            xs.append(arr)
            ys.append(k)
            files.append(key)
            hashes[key] = digest
            if raw_shape is None:
                raw_shape = _stored_shape(path)
    if raw_shape is not None:
        warn_coverage(root, raw_shape, geo)
    x = np.stack(xs)[..., None].astype(np.float32)
    groups = tuple(f"{root}:{group_of.get(f, f)}" for f in files)
    return CropSet(x, np.asarray(ys, dtype=np.int64), tuple(files), tuple(classes),
                   _set_hash(hashes), hashes, groups)


def _stored_shape(path: Path) -> tuple[int, int] | None:
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            shape = tifffile.TiffFile(path).pages[0].shape
        elif path.suffix.lower() == ".npy":
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        else:
            return None
    except Exception:  # shape only feeds a warning; the crop itself was read already
        return None
    return (int(shape[0]), int(shape[1])) if len(shape) >= 2 else None


def load_labelled(folder: Path, classes: Sequence[str] | None = None, *,
                  crop_um: float | None = None, pixel_size_um: float | None = None) -> CropSet:
    """Read a labelled folder (one sub-folder per class) into a :class:`CropSet`.

    Parameters
    ----------
    folder : the labelled folder
    classes : class names to use, in model output order; default every sub-folder (cell-cycle
        phases first, in cycle order, then other names alphabetically)
    crop_um : the model's field, um; crops are resampled to it from their pixel size
    pixel_size_um : pixel size of the crops when the folder has no ``dataset.json``

    Raises
    ------
    TrainingDataError
        See :func:`class_folders` and :func:`read_crop_file`; a ``dataset.json`` that is
        invalid or contradicts ``pixel_size_um``.
    """
    folders = class_folders(folder, classes)
    geo = folder_geometry(folder, crop_um, pixel_size_um)
    data = _read_classes(folders, tuple(folders), Path(folder), geo)
    log.info("read %d labelled crops in %d classes from %s", len(data), len(folders), folder)
    return data


def check_held_out(tests: Sequence[Path], labelled: Sequence[Path]) -> None:
    """A test folder must be held out: not a labelled (training) folder, not inside one, not
    holding one; its scores would otherwise be those of crops the model was trained on.

    Raises
    ------
    TrainingDataError
        Naming both folders.
    """
    for t in tests:
        for lab in labelled:
            if overlaps(Path(t), Path(lab)):
                raise TrainingDataError(
                    f"--test {t}: overlaps the labelled folder {lab} (the same folder, or one "
                    "holds the other): its crops would be trained on and its scores would not "
                    "be a test; give a held-out folder"
                )


def load_test(folder: Path, classes: Sequence[str], *, crop_um: float | None = None,
              pixel_size_um: float | None = None) -> CropSet:
    """Read a held-out test folder, labelled with the *training* classes' indices.

    The test folder may hold a subset of the classes. ``crop_um`` and ``pixel_size_um`` as in
    :func:`load_labelled`.

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
               if _is_folder(p) and any(map(is_crop_file, p.iterdir()))]
    unknown = [c for c in present if c not in classes]
    if unknown:
        raise TrainingDataError(
            f"{folder / unknown[0]}: test class '{unknown[0]}' is not a training class "
            f"({', '.join(classes)}); remove the folder or train with it"
        )
    if not present:
        raise TrainingDataError(f"{folder}: test folder has no class folders with crop files")
    geo = folder_geometry(folder, crop_um, pixel_size_um)
    return _read_classes({c: folder / c for c in classes if c in present}, classes, folder, geo)


def merge_sets(sets: Sequence[CropSet], names: Sequence[str]) -> CropSet:
    """One labelled set from several (classes: the union, cell-cycle phases first).

    ``names`` prefix each set's file names (for example the folders' paths), so files of the
    same name in two folders stay apart.
    """
    if len(sets) == 1:
        return sets[0]
    classes = tuple(_order_classes(list(dict.fromkeys(c for s in sets for c in s.classes))))
    xs, ys, files, hashes, groups = [], [], [], {}, []
    for s, name in zip(sets, names, strict=True):
        remap = np.array([classes.index(c) for c in s.classes], dtype=np.int64)
        xs.append(s.x)
        ys.append(remap[s.y] if len(s.classes) else s.y)
        keys = [f"{name}/{f}" for f in s.files]
        files += keys
        hashes.update({f"{name}/{f}": h for f, h in s.file_hashes.items()})
        groups += list(s.groups) if s.groups else keys
    return CropSet(np.concatenate(xs), np.concatenate(ys), tuple(files), classes,
                   _set_hash(hashes), hashes, tuple(groups))


def load_unlabelled(source: Path, *, crop_um: float | None = None,
                    pixel_size_um: float | None = None) -> CropSet:
    """Read the unlabelled pool: a flat folder of crop files, or an ``.npz`` of crops (N, H, W).

    ``crop_um`` and ``pixel_size_um`` as in :func:`load_labelled` (an ``.npz`` pool's
    ``dataset.json`` lies beside it).

    Raises
    ------
    TrainingDataError
        If the folder or file is missing, holds no crops, or a file is unreadable.
    """
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".npz":
        return _load_npz_pool(source, folder_geometry(source, crop_um, pixel_size_um))
    if not source.is_dir():
        raise TrainingDataError(
            f"{source}: unlabelled folder not found; give a flat folder of crops or an .npz file"
        )
    paths = sorted(p for p in source.iterdir() if is_crop_file(p))
    if not paths:
        raise TrainingDataError(
            f"{source}: unlabelled folder holds no crop files ({'/'.join(CROP_SUFFIXES)}); "
            "add crops (the folder must be flat, no sub-folders)"
        )
    geo = folder_geometry(source, crop_um, pixel_size_um)
    xs, hashes = [], {}
    for path in paths:
        arr, digest = read_crop_file(path, geo)
        xs.append(arr)
        hashes[path.name] = digest
    files = tuple(p.name for p in paths)
    x = np.stack(xs)[..., None].astype(np.float32)
    log.info("read %d unlabelled crops from %s", len(x), source)
    return CropSet(x, np.full(len(x), -1, dtype=np.int64), files, (), _set_hash(hashes), hashes)


def _load_npz_pool(path: Path, geo: Geometry) -> CropSet:
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
    warn_coverage(path, arr.shape[1:3], geo)
    try:
        x = np.stack([geo.prepare(a) for a in arr])[..., None].astype(np.float32)
    except ImageError as e:
        raise TrainingDataError(f"{path}: {e}") from e
    files = tuple(f"{path.name}[{i}]" for i in range(len(x)))
    hashes = {f: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
              for f, a in zip(files, arr, strict=True)}
    return CropSet(x, np.full(len(x), -1, dtype=np.int64), files, (), _set_hash(hashes), hashes)
