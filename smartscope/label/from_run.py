"""A labelling pool from a finished run: every nucleus the run classified, cut again from the
run's saved images at the positions and pixel sizes in ``cells.csv``, with the run's class
probabilities, so a day's runs feed the next fine-tuning (crops -> label -> transfer).

Each ``cells.csv`` row names the data set and axes of its image (``dataset``, ``axes``); in a run
of an earlier version, which has one data set and no such columns, the image is the one with the
row's elapsed time (``ElapsedTime-ms``). Crops of one position, objective and mode share a
``source`` so the labelling page links them in time.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from smartscope.errors import TrainingDataError
from smartscope.outputs import atomic_file

log = logging.getLogger(__name__)

CELLS_FILE = "cells.csv"
POOL_COLUMNS = ("crop_id", "file", "source", "frame", "y", "x", "area_um2", "mean_intensity",
                "touches_edge", "pixel_size_um", "time_s", "objective", "channel", "track",
                "phase", "confidence")
TIME_TOLERANCE_MS = 0.5
"""A cells.csv frame and a saved image are the same when their elapsed times differ by less."""


def find_dataset(run_dir: Path) -> Path:
    """The NDTiff data set folder of a run (the folder holding ``NDTiff.index``).

    Raises
    ------
    TrainingDataError
        If there is none or more than one.
    """
    found = sorted({p.parent for p in Path(run_dir).glob("*NDTiff.index")}
                   | {p.parent for p in Path(run_dir).glob("*/*NDTiff.index")})
    if len(found) != 1:
        what = "no NDTiff data set" if not found else f"{len(found)} NDTiff data sets"
        raise TrainingDataError(
            f"{run_dir}: {what} in the run folder; give the --out folder of one finished "
            "`smartscope run` (it holds cells.csv and the images)"
        )
    return found[0]


def read_cells(run_dir: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of a run's ``cells.csv`` and the class names of its ``p_<class>`` columns."""
    path = Path(run_dir) / CELLS_FILE
    if not path.is_file():
        raise TrainingDataError(
            f"{run_dir}: no {CELLS_FILE}; give the --out folder of a finished `smartscope run`"
        )
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or ())
        need = ("frame", "time_s", "pixel_size_um", "y", "x", "phase", "confidence")
        missing = [c for c in need if c not in columns]
        if missing:
            raise TrainingDataError(f"{path}: missing column(s) {', '.join(missing)}")
        return list(reader), [c[2:] for c in columns if c.startswith("p_")]


class _Images:
    """The image of each ``cells.csv`` frame: by its ``dataset`` and ``axes`` columns, else (a run
    of an earlier version) by elapsed time in the run's only data set."""

    def __init__(self, run_dir: Path, rows: list[dict[str, str]]) -> None:
        self.run_dir = run_dir
        self._open: dict[Path, Any] = {}
        self.located = bool(rows) and all(r.get("dataset") and r.get("axes") for r in rows)
        self._by_time: dict[int, dict[str, Any]] | None = None
        self._only: Path | None = None
        if not self.located:
            self._only = find_dataset(run_dir)

    def _dataset(self, path: Path) -> Any:
        if path not in self._open:
            from ndstorage import Dataset

            try:
                with contextlib.redirect_stdout(io.StringIO()):  # ndstorage prints its progress
                    self._open[path] = Dataset(str(path))
            except Exception as e:  # ndstorage raises many types on a damaged data set
                raise TrainingDataError(f"{path}: not a readable NDTiff data set ({e})") from e
        return self._open[path]

    def image(self, row: dict[str, str]) -> np.ndarray | None:
        """The image of a cells.csv row (None when it is not in the data set)."""
        if self.located:
            ds = self._dataset(self.run_dir / row["dataset"])
            axes = json.loads(row["axes"])
            if not ds.has_image(**axes):
                return None
            return np.asarray(ds.read_image(**axes))
        assert self._only is not None
        ds = self._dataset(self._only)
        if self._by_time is None:
            self._by_time = _images_by_time(ds)
        found = _lookup(self._by_time, float(row["time_s"]))
        return np.asarray(ds.read_image(**found)) if found is not None else None

    def close(self) -> None:
        for ds in self._open.values():
            ds.close()


def _images_by_time(dataset: Any) -> dict[int, dict[str, Any]]:
    """``{elapsed time in 0.1 ms: axes}`` of every image of the data set."""
    out = {}
    for axes in dataset.get_image_coordinates_list():
        meta = dataset.read_metadata(**axes)
        t = meta.get("ElapsedTime-ms")
        if t is not None:
            out[round(float(t) * 10)] = dict(axes)
    return out


def _lookup(by_time: dict[int, dict[str, Any]], time_s: float) -> dict[str, Any] | None:
    key = round(time_s * 10000)
    tol = round(TIME_TOLERANCE_MS * 10)
    for k in sorted(range(key - tol, key + tol + 1), key=lambda k: abs(k - key)):
        if k in by_time:
            return by_time[k]
    return None


def _mean_above_background(crop: np.ndarray, area_um2: float, crop_px_um: float,
                           background: float) -> float:
    """Mean of a disc of the nucleus's area at the crop centre, minus the frame background."""
    r_px = max(1.0, math.sqrt(max(area_um2, 0.0) / math.pi) / crop_px_um)
    c = (crop.shape[0] - 1) / 2.0
    yy, xx = np.mgrid[:crop.shape[0], :crop.shape[1]]
    disc = (yy - c) ** 2 + (xx - c) ** 2 <= r_px ** 2
    return float(crop[disc].mean() - background)


def crops_from_run(run_dir: Path, out: Path, skip_edge: bool = False) -> int:
    """Write a labelling pool (``out/crops/*.tif`` + ``out/index.csv``) from a finished run.

    Returns
    -------
    number of crops written

    Raises
    ------
    TrainingDataError
        If the run folder lacks cells.csv or its data set, or no cells.csv frame matches an image.
    """
    from smartscope.vision import extract_crops
    from smartscope.vision.crops import background_level
    from smartscope.vision.preprocess import CROP_UM, INPUT_SIZE

    run_dir = Path(run_dir)
    rows, classes = read_cells(run_dir)
    try:
        import ndstorage  # noqa: F401
    except ImportError as e:
        raise TrainingDataError("reading a run's images needs ndstorage: pip install "
                                "'smartscope[mm]'") from e
    images = _Images(run_dir, rows)
    by_frame: dict[int, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_frame[int(row["frame"])].append(row)
    crop_dir = Path(out) / "crops"
    crop_dir.mkdir(parents=True, exist_ok=True)
    pool_rows: list[dict[str, Any]] = []
    unmatched = 0
    try:
        for frame in sorted(by_frame):
            cells = by_frame[frame]
            found = images.image(cells[0])
            if found is None:
                unmatched += len(cells)
                continue
            image = found.reshape(found.shape[-2:])
            ps = float(cells[0]["pixel_size_um"])
            ys = np.array([float(c["y"]) for c in cells])
            xs = np.array([float(c["x"]) for c in cells])
            raw = extract_crops(image, ys, xs, ps)
            bg = background_level(image)
            h, w = found.shape[-2:]
            for k, (cell, crop) in enumerate(zip(cells, raw, strict=True)):
                area = float(cell.get("area_um2") or "nan")
                r_px = math.sqrt(area / math.pi) / ps if math.isfinite(area) else 0.0
                edge = not (r_px <= ys[k] <= h - 1 - r_px and r_px <= xs[k] <= w - 1 - r_px)
                if skip_edge and edge:
                    continue
                cid = f"f{frame:05d}n{k:03d}"
                mean = (_mean_above_background(crop, area, CROP_UM / INPUT_SIZE, bg)
                        if math.isfinite(area) else float(crop.mean() - bg))
                stored = (np.clip(np.rint(crop), 0, 65535).astype(np.uint16)
                          if np.issubdtype(image.dtype, np.integer) else crop.astype(np.float32))
                _write_tif(crop_dir / f"{cid}.tif", stored)
                source = "|".join(cell.get(c, "") for c in ("position", "objective", "mode"))
                pool_rows.append({
                    "crop_id": cid, "file": f"crops/{cid}.tif", "source": source, "frame": frame,
                    "y": f"{ys[k]:.1f}", "x": f"{xs[k]:.1f}",
                    "area_um2": f"{area:.1f}" if math.isfinite(area) else "0",
                    "mean_intensity": f"{mean:.1f}",
                    "touches_edge": int(edge), "pixel_size_um": f"{ps:g}",
                    "time_s": cell["time_s"], "objective": cell.get("objective", ""),
                    "channel": cell.get("channel", ""), "track": cell.get("track", ""),
                    "phase": cell["phase"],
                    "confidence": cell["confidence"],
                    **{f"p_{c}": cell.get(f"p_{c}", "") for c in classes},
                })
    finally:
        images.close()
    hint = _repair_hint(Path(run_dir))
    if unmatched:
        log.warning("%s: %d classified nuclei on frames with no saved image were left out%s",
                    run_dir, unmatched, hint)
    if not pool_rows:
        raise TrainingDataError(
            f"{run_dir}: no classified nucleus could be matched to a saved image "
            f"({len(rows)} rows in {CELLS_FILE}){hint}"
        )
    with atomic_file(Path(out) / "index.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*POOL_COLUMNS, *(f"p_{c}" for c in classes)])
        writer.writeheader()
        writer.writerows(pool_rows)
    log.info("%s: %d crops from %d frames -> %s", run_dir, len(pool_rows), len(by_frame), out)
    return len(pool_rows)


def _write_tif(path: Path, crop: np.ndarray) -> None:
    import tifffile

    with atomic_file(path) as tmp:
        tifffile.imwrite(tmp, crop, compression="zlib", predictor=True)


def _repair_hint(run_dir: Path) -> str:
    """What to do when images are missing because the run was killed (its data set's index is
    empty until ``smartscope repair`` rebuilds it): run.json still says ``running``."""
    try:
        info = json.loads((run_dir / "run.json").read_text())
        status = info.get("summary", {}).get("status")
    except (OSError, ValueError, AttributeError):
        return ""
    if status != "running":
        return ""
    return (f"; the run was never closed (killed?): run 'smartscope repair {run_dir}' to "
            "recover its images, then this again")
