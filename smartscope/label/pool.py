"""A labelling pool: the crops of ``smartscope crops`` (or ``crops --from-run``) and what is known
about each one.

A pool is a folder holding ``index.csv`` (one row per crop: ``crop_id, file, source, frame, y, x,
area_um2, mean_intensity`` and optionally ``pixel_size_um``, ``phase``, ``confidence`` and one
``p_<class>`` probability column per class of the model that classified it) and the crop files it
names, inside the folder. Crops of the same source at consecutive frames are linked into tracks
(package tracker, in micrometres) when the pixel size is known, so a crop can be shown beside the
same cell in the previous and next frame.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smartscope.errors import TrainingDataError

log = logging.getLogger(__name__)

INDEX_FILE = "index.csv"
REQUIRED_COLUMNS = ("crop_id", "file", "source", "frame", "y", "x", "area_um2", "mean_intensity")
CROP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
"""Crop ids become file names in the labelled folder: letters, digits, ``_ . -`` only."""

LINK_UM = 10.0
"""Largest distance, um, a nucleus may move between two frames and still count as the same cell
(the tracker's default; HeLa at 30 min intervals moves a few um)."""


@dataclass(frozen=True)
class PoolItem:
    """One crop of a pool.

    Attributes
    ----------
    crop_id : str
    path : Path
        The crop file (inside the pool folder).
    source : str
        Source image file; ``frame`` the frame in it; ``y``, ``x`` the centre in pixels.
    area_um2, mean_intensity : float
        Nucleus area and mean intensity above the local background (camera counts).
    probabilities : dict of str to float
        Class probabilities from the run that classified the crop (empty if none).
    track : str
        The run's track id of the nucleus (``crops --from-run``), else empty.
    previous, next : str or None
        Crop id of the same nucleus in the previous / next frame of its source, if known.
    """

    crop_id: str
    path: Path
    source: str
    frame: int
    y: float
    x: float
    area_um2: float
    mean_intensity: float
    pixel_size_um: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    track: str = ""
    previous: str | None = None
    next: str | None = None


def _float(row: dict[str, str], key: str, where: str) -> float:
    try:
        value = float(row[key])
    except (TypeError, ValueError) as e:
        raise TrainingDataError(
            f"{where}: {key}={row.get(key)!r} is not a number; fix or remove the row"
        ) from e
    return value


def _inside(root: Path, rel: str, where: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise TrainingDataError(
            f"{where}: file={rel!r} points outside the pool folder {root}; crop files must lie "
            "inside the pool"
        )
    return path


def load_pool(folder: Path, link_um: float = LINK_UM) -> dict[str, PoolItem]:
    """Read a pool folder into ``{crop_id: PoolItem}`` in file order, with time links.

    Raises
    ------
    TrainingDataError
        If the folder or its ``index.csv`` is missing, a column is missing, a value is not a
        number, a crop id is not a plain name or repeats, or a file lies outside the folder;
        or ``link_um`` is not a positive distance.
    """
    if not (math.isfinite(link_um) and link_um > 0):
        raise TrainingDataError(f"link_um (--link-um) is {link_um}: give the largest move of a "
                                f"nucleus between frames in um, > 0 (default {LINK_UM:g})")
    root = Path(folder).resolve()
    index = root / INDEX_FILE
    if not index.is_file():
        raise TrainingDataError(
            f"{folder}: no {INDEX_FILE}; make a pool with `smartscope crops FRAMES... --out DIR` "
            "or `smartscope crops --from-run RUN_DIR --out DIR`"
        )
    with open(index, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = tuple(reader.fieldnames or ())
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise TrainingDataError(
                f"{index}: missing column(s) {', '.join(missing)}; an index.csv of "
                "`smartscope crops` has them"
            )
        classes = [c[2:] for c in columns if c.startswith("p_")]
        items: dict[str, PoolItem] = {}
        for n, row in enumerate(reader, start=2):
            where = f"{index}, line {n}"
            cid = row["crop_id"]
            if not CROP_ID.match(cid or ""):
                raise TrainingDataError(
                    f"{where}: crop_id={cid!r}; use letters, digits, '_', '.', '-' only"
                )
            if cid in items:
                raise TrainingDataError(f"{where}: crop_id={cid!r} repeats; ids must be unique")
            px = row.get("pixel_size_um") or ""
            probs = {c: _float(row, f"p_{c}", where) for c in classes if row.get(f"p_{c}")}
            items[cid] = PoolItem(
                crop_id=cid, path=_inside(root, row["file"], where), source=row["source"],
                frame=int(_float(row, "frame", where)), y=_float(row, "y", where),
                x=_float(row, "x", where), area_um2=_float(row, "area_um2", where),
                mean_intensity=_float(row, "mean_intensity", where),
                pixel_size_um=_float(row, "pixel_size_um", where) if px else None,
                probabilities=probs, track=(row.get("track") or "").strip(),
            )
    if not items:
        raise TrainingDataError(f"{index}: no crops listed; the pool is empty")
    return link_frames(items, link_um)


def link_frames(items: dict[str, PoolItem], link_um: float = LINK_UM) -> dict[str, PoolItem]:
    """Set ``previous``/``next`` of each crop: the same nucleus one frame before and after.

    Crops are grouped by source and linked from each frame of a source to the next frame of the
    same source with ``decide.NucleusTracker`` in micrometres (one to one, nearest first, at most
    ``link_um`` apart). Crops without a pixel size are left unlinked. A source whose crops all
    carry the run's track ids (``crops --from-run``) is linked by those instead.
    """
    from smartscope.decide.tracking import NucleusTracker

    by_source: dict[str, dict[int, list[PoolItem]]] = defaultdict(lambda: defaultdict(list))
    for item in items.values():
        if item.pixel_size_um:
            by_source[item.source][item.frame].append(item)
    prev: dict[str, str] = {}
    nxt: dict[str, str] = {}
    for source, frames in by_source.items():
        if all(i.track for here in frames.values() for i in here):
            tracks: dict[str, list[PoolItem]] = defaultdict(list)
            for t in sorted(frames):
                for item in frames[t]:
                    tracks[item.track].append(item)
            for seq in tracks.values():
                for a, b in zip(seq, seq[1:], strict=False):
                    prev[b.crop_id], nxt[a.crop_id] = a.crop_id, b.crop_id
            continue
        tracker = NucleusTracker(max_displacement_um=link_um, max_missed_frames=0)
        last: dict[int, str] = {}
        for t in sorted(frames):  # the frames of one source, taken as consecutive
            here = frames[t]
            links = tracker.link(source, [
                (i.x * (i.pixel_size_um or 1.0), i.y * (i.pixel_size_um or 1.0)) for i in here
            ])
            now: dict[int, str] = {}
            for item, link in zip(here, links, strict=True):
                if not link.new and link.parent is None and link.track in last:
                    before = last[link.track]
                    prev[item.crop_id], nxt[before] = before, item.crop_id
                now[link.track] = item.crop_id
            last = now
    out = {}
    for cid, item in items.items():
        out[cid] = PoolItem(**{**item.__dict__, "previous": prev.get(cid), "next": nxt.get(cid)})
    log.info("pool: %d crops, %d linked to a previous frame", len(out), len(prev))
    return out


def read_pixels(item: PoolItem) -> np.ndarray:
    """The crop's pixels as stored (2-D; TIFF via tifffile, ``.npy`` without pickle).

    Raises
    ------
    TrainingDataError
        If the file is missing, unreadable or not one grey image.
    """
    try:
        if item.path.suffix.lower() == ".npy":
            arr = np.load(item.path, allow_pickle=False)
        else:
            import tifffile

            arr = tifffile.imread(item.path)
    except (OSError, ValueError) as e:
        raise TrainingDataError(f"{item.path}: unreadable crop ({type(e).__name__}: {e})") from e
    arr = np.squeeze(np.asarray(arr))
    if arr.ndim != 2 or arr.dtype.kind not in "iuf" or arr.size == 0:
        raise TrainingDataError(
            f"{item.path}: crop has shape {arr.shape} and dtype {arr.dtype}; give one grey image"
        )
    return arr


def read_crop(item: PoolItem) -> np.ndarray:
    """The crop's pixels as a 2-D float32 array (see ``read_pixels``)."""
    return read_pixels(item).astype(np.float32)
