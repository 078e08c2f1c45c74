"""Find a run's images in its NDTiff data set(s) and make small PNG thumbnails of them.

An image is found by the data set and axes the run recorded for its frame (``frames.csv``); a
run without them (an earlier version) is matched by time: the hook's ``time_s`` is the image's
``ElapsedTime-ms``. Reading needs ``ndstorage`` (installed with pycromanager, the ``[mm]``
extra); without it the report has no thumbnails and says so.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: largest side of a thumbnail, pixels
THUMB_PX = 220
#: grey levels of a thumbnail
GREY_LEVELS = 64
#: colours of the marks: box around a cell, circle around a found nucleus, centre cross-hair
_MARKS = {"box": (255, 210, 0), "circle": (255, 0, 200), "cross": (0, 230, 255)}
#: images matched by time must lie this close to the record's time_s, seconds
TIME_TOLERANCE_S = 0.002


@dataclass(frozen=True)
class ImageRef:
    """Where one image lies: data set folder and axes, with its time (run seconds)."""

    dataset: Path
    axes: dict[str, Any]
    time_s: float | None = None

    @property
    def mode(self) -> str:
        return str(self.axes.get("mode", ""))


def dataset_dirs(folder: Path) -> list[Path]:
    """NDTiff data sets (folders with an ``NDTiff.index``) in a run folder, two levels deep:
    the screening data set first, then the follow-ups' (``followup_<n>/...``) in order."""
    found = {p.parent for p in folder.glob("*/NDTiff.index")}
    found |= {p.parent for p in folder.glob("*/*/NDTiff.index")}
    return sorted(found, key=lambda p: (p.relative_to(folder).parts[0].startswith("followup_"),
                                        p.as_posix()))


class ImageStore:
    """Opened data sets of a run, read lazily; close it (or use ``with``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._open: dict[Path, Any] = {}
        self._timed: list[ImageRef] | None = None
        self.error: str | None = None
        self.datasets = dataset_dirs(self.folder)
        try:
            import ndstorage  # noqa: F401
        except ImportError:
            self.error = ("no thumbnails: reading the NDTiff data set needs ndstorage "
                          "(pip install 'smartscope[mm]')")

    def __enter__(self) -> ImageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for ds in self._open.values():
            with contextlib.suppress(Exception):
                ds.close()
        self._open.clear()

    def dataset(self, path: Path) -> Any:
        """The opened data set at ``path`` (None when it cannot be read)."""
        path = Path(path)
        if path not in self._open:
            from ndstorage import Dataset

            try:
                with contextlib.redirect_stdout(io.StringIO()):  # it prints index progress
                    self._open[path] = Dataset(str(path))
            except Exception as e:  # a data set left unreadable by a crash: report the rest
                log.warning("cannot read the data set %s: %s", path, e)
                self._open[path] = None
        return self._open[path]

    def read(self, ref: ImageRef) -> np.ndarray | None:
        """The image's pixels (2-D), or None when it is not in the data set."""
        if self.error is not None:
            return None
        ds = self.dataset(ref.dataset)
        if ds is None:
            return None
        try:
            img = np.asarray(ds.read_image(**ref.axes))
        except Exception as e:
            log.warning("image %s of %s not readable: %s", ref.axes, ref.dataset, e)
            return None
        return img.reshape(img.shape[-2:]) if img.ndim > 2 else img

    def by_time(self) -> list[ImageRef]:
        """Every image of every data set with its time, oldest first (read once)."""
        if self._timed is None:
            self._timed = []
            if self.error is None:
                for path in self.datasets:
                    self._timed.extend(self._timed_refs(path))
                self._timed.sort(key=lambda r: r.time_s if r.time_s is not None else -1.0)
        return self._timed

    def _timed_refs(self, path: Path) -> Iterator[ImageRef]:
        ds = self.dataset(path)
        if ds is None:
            return
        for axes in ds.get_image_coordinates_list():
            try:
                md = ds.read_metadata(**axes)
                t = float(md.get("ElapsedTime-ms")) / 1000.0
            except Exception:  # an image without a timestamp cannot be matched
                continue
            yield ImageRef(path, dict(axes), t)

    def at_time(self, time_s: float, mode: str | None = None) -> ImageRef | None:
        """The image taken at ``time_s`` (within ``TIME_TOLERANCE_S``), of ``mode`` if given."""
        best = None
        for ref in self.by_time():
            if mode is not None and "mode" in ref.axes and ref.mode != mode:
                continue
            if ref.time_s is not None and abs(ref.time_s - time_s) <= TIME_TOLERANCE_S:
                if best is None or abs(ref.time_s - time_s) < abs((best.time_s or 0) - time_s):
                    best = ref
        return best

    def first_after(self, time_s: float, mode: str) -> ImageRef | None:
        """The first image after ``time_s`` whose ``mode`` axis is ``mode`` (z slice 0)."""
        for ref in self.by_time():
            if ref.time_s is not None and ref.time_s > time_s + TIME_TOLERANCE_S \
                    and ref.mode == mode and int(ref.axes.get("z", 0) or 0) == 0:
                return ref
        return None


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Contrast-stretched 8-bit copy (0.5th to 99.8th percentile), for display."""
    a = np.asarray(img, dtype=np.float32)
    step = max(1, int(np.sqrt(a.size / 250_000)))  # percentiles of a subsample: fast on 2k frames
    lo, hi = np.percentile(a[::step, ::step], (0.5, 99.8))
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((a - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def cell_crop(img: np.ndarray, y: float, x: float, half_px: int) -> tuple[np.ndarray, float, float]:
    """A square window of ``img`` around (y, x) (clipped at the border); returns the window and
    the cell's coordinates within it."""
    h, w = img.shape[-2:]
    half = max(8, int(half_px))
    y0, x0 = max(0, int(round(y)) - half), max(0, int(round(x)) - half)
    y1, x1 = min(h, int(round(y)) + half), min(w, int(round(x)) + half)
    return img[y0:y1, x0:x1], y - y0, x - x0


def png_thumbnail(
    img: np.ndarray,
    *,
    box: tuple[float, float, float] | None = None,
    cross: tuple[float, float] | None = None,
    circle: tuple[float, float, float] | None = None,
    size_px: int = THUMB_PX,
) -> str:
    """A PNG thumbnail of ``img`` as a ``data:`` URI, with marks in the image's pixels.

    Parameters
    ----------
    box : (y, x, half_side_px), optional
        Square drawn around a cell (yellow).
    cross : (y, x), optional
        Cross-hair at a point (cyan), e.g. where the cell was centred.
    circle : (y, x, radius_px), optional
        Circle around a detected nucleus (magenta).
    """
    from PIL import Image, ImageDraw

    g = to_uint8(img)
    h, w = g.shape
    scale = size_px / max(h, w)
    out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = Image.fromarray(g, mode="L").resize(
        (out_w, out_h), Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST)
    # a palette image: GREY_LEVELS grey levels (plenty for a thumbnail, and it compresses far
    # better than 8-bit noise) followed by the colours of the marks
    levels = (np.asarray(small, dtype=np.uint16) * GREY_LEVELS // 256).astype(np.uint8)
    im = Image.fromarray(levels, mode="L").convert("P")
    palette = [v for i in range(GREY_LEVELS) for v in (round(i * 255 / (GREY_LEVELS - 1)),) * 3]
    im.putpalette(palette + [c for rgb in _MARKS.values() for c in rgb])
    d = ImageDraw.Draw(im)
    box_c, circle_c, cross_c = (GREY_LEVELS + i for i in range(3))
    if box is not None:
        y, x, half = (v * scale for v in box)
        d.rectangle([x - half, y - half, x + half, y + half], outline=box_c, width=2)
    if circle is not None:
        y, x, r = (v * scale for v in circle)
        d.ellipse([x - r, y - r, x + r, y + r], outline=circle_c, width=2)
    if cross is not None:
        y, x = (v * scale for v in cross)
        arm = max(6.0, size_px / 14)
        d.line([x - arm, y, x - 3, y], fill=cross_c, width=2)
        d.line([x + 3, y, x + arm, y], fill=cross_c, width=2)
        d.line([x, y - arm, x, y - 3], fill=cross_c, width=2)
        d.line([x, y + 3, x, y + arm], fill=cross_c, width=2)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
