"""ImageJ hyperstack TIFFs of a run, for Fiji, napari and any TIFF reader: one stack per
screening position and one per follow-up data set (time-lapse, z-stack), each with its own pixel
size, z step and frame interval in its metadata.

A run keeps its screening in Pycro-Manager's data set (axes ``time``, ``position``, ``channel``)
and each follow-up part in a data set of its own (``followup_<n>/<NN>_<action>/``, axes ``time``
or ``z``, and ``channel``; its summary names the follow-up): each follow-up data set becomes one
stack. A run of an earlier version kept every image in one data set under the axes ``mode``
(screen / follow), ``time``, ``position``, ``z`` and ``channel``; its images are regrouped:
follow-up images between two screening images are one follow-up; within it, time points with
several z slices are a z-stack, the others the time-lapse (the same for follow-up images a hook
without a run folder left in Pycro-Manager's data set, under a ``followup`` axis). Images are
read one at a time (memory stays flat on long runs).
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartscope.errors import OutputError, RunFolderError
from smartscope.outputs import atomic_file, check_dir_target, check_file_target
from smartscope.report.images import ImageRef, ImageStore
from smartscope.report.load import load_run

log = logging.getLogger(__name__)

EXPORT_DIR = "tiff"
SOFTWARE = "smartscope export"


@dataclass(frozen=True)
class _Image:
    ref: ImageRef
    pixel_size_um: float | None
    z_um: float | None


@dataclass(frozen=True)
class Stack:
    """One exported stack: its file, shape (T, Z, C, Y, X) and calibration."""

    path: Path
    shape: tuple[int, ...]
    pixel_size_um: float | None
    z_step_um: float | None
    interval_s: float | None


def export_tiffs(folder: str | Path, *, screening: bool = True) -> list[Stack]:
    """Write ``folder/tiff/*.tif``: ``screening_<position>.tif`` (T, C) per screening position
    (``screening=False`` skips them: they are as large as the screening itself) and
    ``followup_<n>_<NN>_<action>.tif`` (T, C; Z, C for a z-stack) per follow-up data set
    (``followup_<n>.tif`` / ``followup_<n>_zstack<k>.tif`` for a run of an earlier version).

    Raises
    ------
    RunFolderError
        If the folder is not a run or has no readable NDTiff data set.
    OutputError
        If a file in ``tiff/`` exists that this function did not write.
    """
    rec = load_run(folder)
    out_dir = rec.folder / EXPORT_DIR
    with ImageStore(rec.folder) as store:
        if store.error is not None:
            raise RunFolderError(f"{rec.folder}: {store.error}")
        images = _images(store)
        if not images:
            raise RunFolderError(f"{rec.folder}: no readable image in an NDTiff data set here")
        check_dir_target(out_dir, option="RUN_DIR")  # a file named tiff, a read-only run
        try:
            out_dir.mkdir(exist_ok=True)
        except OSError as e:
            raise OutputError(f"RUN_DIR {out_dir}: cannot create the folder ({e.strerror}); "
                              "copy the run somewhere writable") from e
        stacks = []
        parts = _followup_sets(store)
        mixed = [im for im in images if im.ref.dataset not in parts]
        for name, planes, axes in _groups(mixed, screening):
            stacks.append(_write(store, out_dir / f"{name}.tif", planes, axes))
        for path, name in parts.items():
            ims = [im for im in images if im.ref.dataset == path]
            outer = "z" if any("z" in im.ref.axes for im in ims) else "time"
            stacks.append(_write(store, out_dir / f"{name}.tif",
                                 _by(ims, outer, _channels(ims)), outer[0].upper()))
    return stacks


def _followup_sets(store: ImageStore) -> dict[Path, str]:
    """The follow-up data sets of the run (their summary names the follow-up), in order, with
    the name of their stack: their folder, ``/`` replaced by ``_``."""
    out = {}
    for path in store.datasets:
        ds = store.dataset(path)
        summary = getattr(ds, "summary_metadata", None) or {}
        if ds is not None and "Followup" in summary:
            out[path] = path.relative_to(store.folder).as_posix().replace("/", "_")
    return out


def _images(store: ImageStore) -> list[_Image]:
    """Every image with its time, pixel size and focus position, oldest first."""
    out = []
    for ref in store.by_time():
        md: dict[str, Any] = {}
        ds = store.dataset(ref.dataset)
        try:
            md = dict(ds.read_metadata(**ref.axes)) if ds is not None else {}
        except Exception:  # an image without metadata is still exported, uncalibrated
            log.debug("no metadata for %s", ref.axes)
        ps = md.get("PixelSize_um") or md.get("PixelSizeUm")
        z = md.get("ZPosition_um_Intended", md.get("ZPositionUm"))
        out.append(_Image(ref, float(ps) if ps else None, float(z) if z is not None else None))
    return out


def _groups(images: Sequence[_Image], screening: bool) -> Iterator[
        tuple[str, list[list[_Image]], str]]:
    """(name, planes[outer][channel], outer axis "T" or "Z") for every stack to write."""
    screen: dict[Any, list[_Image]] = defaultdict(list)
    followups: list[list[_Image]] = []
    last_mode = None
    for im in images:
        mode = "follow" if "followup" in im.ref.axes else im.ref.axes.get("mode", "screen")
        if mode == "follow":
            if last_mode != "follow":
                followups.append([])
            followups[-1].append(im)
        else:
            screen[im.ref.axes.get("position", 0)].append(im)
        last_mode = mode
    if screening:
        for pos, ims in sorted(screen.items(), key=lambda kv: str(kv[0])):
            yield f"screening_{pos}", _by(ims, "time", _channels(ims)), "T"
    for n, ims in enumerate(followups, start=1):
        by_time: dict[Any, list[_Image]] = defaultdict(list)
        for im in ims:
            by_time[im.ref.axes.get("time", 0)].append(im)
        stacks = [t for t, group in by_time.items()
                  if len({g.ref.axes.get("z", 0) for g in group}) > 1]
        lapse = [im for im in ims if im.ref.axes.get("time", 0) not in stacks]
        chans = _channels(ims)
        if lapse:
            yield f"followup_{n:03d}", _by(lapse, "time", chans), "T"
        for k, t in enumerate(stacks, start=1):
            yield f"followup_{n:03d}_zstack{k}", _by(by_time[t], "z", chans), "Z"


def _channels(ims: Sequence[_Image]) -> list[Any]:
    seen: list[Any] = []
    for im in ims:
        c = im.ref.axes.get("channel")
        if c not in seen:
            seen.append(c)
    return seen


def _by(ims: Sequence[_Image], axis: str, channels: Sequence[Any]) -> list[list[_Image]]:
    """Planes ordered by ``axis`` value: [index][channel] (a missing channel repeats the first
    one found, so every plane has every channel)."""
    groups: dict[Any, dict[Any, _Image]] = defaultdict(dict)
    for im in ims:
        groups[im.ref.axes.get(axis, 0)].setdefault(im.ref.axes.get("channel"), im)
    planes = []
    for key in sorted(groups):
        found = groups[key]
        first = next(iter(found.values()))
        planes.append([found.get(c, first) for c in channels])
    return planes


def _write(store: ImageStore, path: Path, planes: list[list[_Image]], outer: str) -> Stack:
    import tifffile

    flat = [im for plane in planes for im in plane]
    first = store.read(flat[0].ref)
    if first is None:
        raise RunFolderError(f"{flat[0].ref.dataset}: image {flat[0].ref.axes} not readable")
    n, n_c = len(planes), len(planes[0])
    shape = (n, 1, n_c, *first.shape[-2:]) if outer == "T" else (1, n, n_c, *first.shape[-2:])
    ps = flat[0].pixel_size_um
    dz = dt = None
    if outer == "Z" and n > 1:
        zs = [p[0].z_um for p in planes]
        dz = abs(zs[1] - zs[0]) if zs[0] is not None and zs[1] is not None else None
    if outer == "T" and n > 1:
        times = [p[0].ref.time_s for p in planes]
        steps = [b - a for a, b in zip(times, times[1:], strict=False)
                 if a is not None and b is not None]
        dt = statistics.median(steps) if steps else None
    metadata: dict[str, Any] = {"axes": "TZCYX", "unit": "um"}
    if dz:
        metadata["spacing"] = dz
    if dt:
        metadata["finterval"] = dt
    labels = [str(im.ref.axes.get("channel", "")) for im in flat[:n_c]]
    metadata["Labels"] = labels * n

    def pages() -> Iterator[np.ndarray]:
        for im in flat:
            img = store.read(im.ref)
            yield (img if img is not None else np.zeros(shape[-2:], first.dtype)).astype(
                first.dtype, copy=False)

    target = check_file_target(path, option="tiff/", replaceable=_is_ours)
    with atomic_file(target) as tmp:
        tifffile.imwrite(tmp, pages(), shape=shape, dtype=first.dtype, imagej=True,
                         resolution=(1 / ps, 1 / ps) if ps else None, metadata=metadata,
                         software=SOFTWARE)
    log.info("wrote %s %s", path, shape)
    return Stack(path, shape, ps, dz, dt)


def _is_ours(path: Path) -> bool:
    import tifffile

    try:
        with tifffile.TiffFile(path) as t:
            tag = t.pages[0].tags.get("Software")  # type: ignore[union-attr]
            return tag is not None and tag.value == SOFTWARE
    except Exception:  # not a TIFF: not ours
        return False
