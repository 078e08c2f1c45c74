"""TIFF movies read page by page: compressed or tiled stacks (which cannot be memory-mapped)
and multi-page files whose pages were written one by one (each its own series), so that a
long recording is never read whole into memory."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from smartscope.errors import RecordingError
from smartscope.sim.replay.movie import Movie


class PageMovie(Movie):
    """A T x Y x X movie whose frame ``i`` is one TIFF page, decoded when shown.

    ``series_pages``: frame ``i`` is page ``i`` of the file's first series (a compressed stack);
    otherwise page ``i`` of the file (pages written one by one).
    """

    def __init__(self, path: Path, tif: Any, n_frames: int, first: np.ndarray,
                 series_pages: bool) -> None:
        super().__init__(path, n_frames, first.shape, first.dtype, "tiff")
        self._tif = tif
        self._series_pages = series_pages
        self._lock = threading.Lock()  # one TIFF file handle: the camera thread and the caller

    def _read(self, index: int) -> np.ndarray:
        with self._lock:
            if self._series_pages:
                img = self._tif.asarray(key=index, series=0)
            else:
                img = self._tif.pages[index].asarray()
        return np.squeeze(np.asarray(img))

    def close(self) -> None:
        self._tif.close()


def open_pages(path: Path, frames: int | None) -> Movie:
    """Open ``path`` page by page: the first series' ``frames`` pages, or (None) every page of
    the file, which must all be one Y x X grey image of one size and type.

    Raises
    ------
    RecordingError
        Pages of different sizes or types, or a page that is not one grey image.
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as e:  # tifffile raises many types on a damaged or foreign file
        raise RecordingError(f"{path}: not a readable TIFF file ({e}); give a TIFF stack") from e
    try:
        if frames is None:
            pages = tif.pages
            first_page = pages.first
            n = len(pages)
            for i in range(1, n):
                page = pages[i]
                if page.shape != first_page.shape or page.dtype != first_page.dtype:
                    raise RecordingError(
                        f"{path}: page {i} is {page.shape} {page.dtype} but page 0 is "
                        f"{first_page.shape} {first_page.dtype}; give a T x Y x X stack of one "
                        "size and pixel type"
                    )
            movie = PageMovie(path, tif, n, np.squeeze(first_page.asarray()), False)
        else:
            first = np.squeeze(np.asarray(tif.asarray(key=0, series=0)))
            movie = PageMovie(path, tif, frames, first, True)
        if movie.frame(0).ndim != 2:
            raise RecordingError(f"{path}: a page holds {movie.frame(0).shape}, not one Y x X "
                                 "grey image; give a T x Y x X stack")
        return movie
    except BaseException:
        tif.close()
        raise
