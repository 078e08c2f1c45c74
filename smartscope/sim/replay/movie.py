"""Recorded time-lapses for the replay microscope: a TIFF stack, an NDTiff data set, a folder of
frames.

A movie is T x Y x X (one channel, one z plane, one stage position). Frames are read on demand
(a TIFF stack is memory-mapped when its layout allows), so a long recording does not have to
fit in memory.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from smartscope.errors import RecordingError
from smartscope.sim.replay.folder import check_one_series, check_same_frames

log = logging.getLogger(__name__)

#: frames of a folder or NDTiff movie kept decoded
_CACHE_FRAMES = 4


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class Movie:
    """A recorded T x Y x X movie.

    Attributes
    ----------
    path : Path
    n_frames : int
    shape : (rows, cols)
    dtype : numpy dtype
        uint8 or uint16 (other types are mapped into uint16 when read, see ``_levels``).
    pixel_size_um, frame_interval_s : float or None
        What the file itself says (NDTiff metadata), None when it says nothing.
    """

    def __init__(self, path: Path, n_frames: int, shape: tuple[int, int], dtype: np.dtype,
                 kind: str, pixel_size_um: float | None = None,
                 frame_interval_s: float | None = None) -> None:
        self.path = path
        self.n_frames = int(n_frames)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(np.uint8) if np.dtype(dtype) == np.uint8 else np.dtype(np.uint16)
        self.kind = kind
        self.pixel_size_um = pixel_size_um
        self.frame_interval_s = frame_interval_s
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._background: tuple[float, float] | None = None
        self.source_dtype = np.dtype(dtype)
        self._map: tuple[float, float] | None = None

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as a (rows, cols) array of ``dtype``."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside the movie (0-{self.n_frames - 1})")
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            return hit
        img = np.asarray(self._read(index))
        if img.shape != self.shape:
            raise RecordingError(
                f"{self.path}: frame {index} is {img.shape[0]} x {img.shape[1]} px but the first "
                f"is {self.shape[0]} x {self.shape[1]}; give frames of one size"
            )
        if img.dtype != self.dtype:
            img = self._to_camera(img, index)
        self._cache[index] = img
        while len(self._cache) > _CACHE_FRAMES:
            self._cache.popitem(last=False)
        return img

    def _to_camera(self, img: np.ndarray, index: int) -> np.ndarray:
        """A frame of another pixel type in the camera's 16 bits: ``a * value + b`` with one
        map for the whole movie (see ``_levels``); NaN and inf pixels get the frame's median."""
        a, b = self._levels()
        out = img.astype(np.float64)
        bad = ~np.isfinite(out)
        if bad.any():
            if bad.all():
                raise RecordingError(
                    f"{self.path}: frame {index} has no finite pixel value (all NaN or inf); "
                    "give a movie whose frames hold grey values"
                )
            out[bad] = np.median(out[~bad])
        if (a, b) != (1.0, 0.0):
            out = out * a + b
        return np.clip(np.rint(out), 0, np.iinfo(self.dtype).max).astype(self.dtype)

    def _levels(self) -> tuple[float, float]:
        """(a, b) of the map of this movie's pixel values into 16 bits, set once from the
        finite range ``lo..hi`` of up to 8 evenly spaced frames: values already in 0-65535
        are kept (integers, or floats spanning >= 255 levels); otherwise ``lo`` goes to 0 and,
        when the range is wider than 60000 or a float range narrower than 255 (e.g. 0-1),
        it is stretched linearly onto 0-60000 (brighter later frames clip at 65535)."""
        if self._map is None:
            picks = sorted({int(round(i)) for i in
                            np.linspace(0, self.n_frames - 1, min(self.n_frames, 8))})
            lo, hi = math.inf, -math.inf
            for i in picks:
                img = np.asarray(self._read(i))
                finite = img[np.isfinite(img)] if img.dtype.kind == "f" else img
                if finite.size:
                    lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
            if not lo <= hi:
                raise RecordingError(
                    f"{self.path}: no finite pixel value in frames {picks} (all NaN or inf); "
                    "give a movie whose frames hold grey values"
                )
            integer = self.source_dtype.kind in "iub"
            span = hi - lo
            a, b = 1.0, 0.0
            if not (integer or span >= 255) or span > 60000:
                a = 60000.0 / span if span > 0 else 1.0
            if a != 1.0 or lo < 0 or hi > 65535:
                b = -lo * a
            if (a, b) != (1.0, 0.0):
                log.info("replay movie %s: %s values %g..%g mapped linearly to %g..%g ADU",
                         self.path, self.source_dtype, lo, hi, lo * a + b, hi * a + b)
            self._map = (a, b)
        return self._map

    def _read(self, index: int) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def background(self) -> tuple[float, float]:
        """(level, noise) of the background, ADU, estimated on the first frame.

        Level: the median of a ring along the frame's border (what meets the background the
        replay shows outside the recorded field; nuclei cover well under half of it); noise:
        the robust spread of neighbour differences among pixels below the frame's median.
        """
        if self._background is None:
            img = self.frame(0).astype(np.float32)
            h, w = img.shape
            b = max(2, min(h, w) // 50)
            ring = np.concatenate([img[:b].ravel(), img[-b:].ravel(), img[:, :b].ravel(),
                                   img[:, -b:].ravel()])
            level = float(np.median(ring))
            low = img[:, :-1] < np.median(img)
            diff = np.diff(img, axis=1)[low]
            mad = float(np.median(np.abs(diff - np.median(diff)))) if diff.size else 0.0
            self._background = (level, float(mad / (0.6745 * np.sqrt(2.0))))
        return self._background

    def close(self) -> None:
        """Release open files."""


class _ArrayMovie(Movie):
    def __init__(self, path: Path, data: np.ndarray, kind: str) -> None:
        super().__init__(path, data.shape[0], data.shape[1:], data.dtype, kind)
        self._data = data

    def _read(self, index: int) -> np.ndarray:
        return np.array(self._data[index])


class _FolderMovie(Movie):
    def __init__(self, path: Path, files: list[Path], first: np.ndarray) -> None:
        super().__init__(path, len(files), first.shape, first.dtype, "folder")
        self.files = files

    def _read(self, index: int) -> np.ndarray:
        return _read_2d(self.files[index])


class _NDTiffMovie(Movie):
    def __init__(self, path: Path, dataset: Any, coords: list[dict[str, Any]],
                 first: np.ndarray, pixel_size_um: float | None,
                 frame_interval_s: float | None) -> None:
        super().__init__(path, len(coords), first.shape, first.dtype, "ndtiff", pixel_size_um,
                         frame_interval_s)
        self._ds = dataset
        self._coords = coords

    def _read(self, index: int) -> np.ndarray:
        return np.asarray(self._ds.read_image(**self._coords[index]))

    def close(self) -> None:
        self._ds.close()


def _read_2d(path: Path) -> np.ndarray:
    import tifffile

    try:
        img = tifffile.imread(path)
    except Exception as e:  # tifffile raises many types on a damaged or foreign file
        raise RecordingError(f"{path}: not a readable TIFF image ({e}); give a TIFF frame") from e
    img = np.squeeze(img)
    if img.ndim != 2:
        raise RecordingError(
            f"{path}: a frame of the movie has shape {img.shape}; each file of a folder movie "
            "must be one Y x X image"
        )
    return img


#: smallest frame the replay camera can show (rows, cols), as for the simulator's sensor
MIN_FRAME_PX = 16


def _check_frame_size(path: Path, shape: tuple[int, ...]) -> None:
    if min(shape) < MIN_FRAME_PX:
        raise RecordingError(
            f"{path}: frames of {shape[0]} x {shape[1]} px are too small to replay; give frames "
            f"of at least {MIN_FRAME_PX} x {MIN_FRAME_PX} px (T x Y x X)"
        )


def _one_channel(path: Path, shape: tuple[int, ...], axes: str) -> None:
    """Refuse colour samples (RGB stored pixel by pixel, axis S last) and channel axes, which
    would be taken for time or for frame columns. Planar samples (S first) stay frames: a
    3-frame grey stack is often written that way."""
    for ax, what in (("S", "a colour (RGB) image"), ("C", "several channels")):
        i = axes.find(ax)
        if ax == "S" and i != len(axes) - 1:
            continue
        if 0 <= i < len(shape) and shape[i] > 1:
            raise RecordingError(
                f"{path}: shape {shape} (axes {axes}) holds {what}; replay needs one grey "
                "channel: save the nuclear channel alone as a T x Y x X stack"
            )


def _check_dtype(path: Path, dtype: np.dtype) -> None:
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise RecordingError(f"{path}: pixel type {dtype} cannot be replayed; give grey values")


#: the default frame pattern; with it, only files ending in .tif or .tiff are frames
DEFAULT_PATTERN = "*.tif*"


def open_movie(path: str | Path, frame_pattern: str = DEFAULT_PATTERN) -> Movie:
    """Open a recorded movie.

    Parameters
    ----------
    path : path
        A TIFF stack (T x Y x X), an NDTiff data set folder (time axis only), or a folder of
        one-frame TIFF files (sorted by name, numbers in natural order).
    frame_pattern : str
        Which files of a folder are frames (glob), e.g. ``"*_h2b.tif"`` when a folder holds
        several channels.

    Raises
    ------
    RecordingError
        The path does not exist, or the movie is not T x Y x X.
    """
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*NDTiff.index")):
            return _open_ndtiff(path)
        files = sorted((p for p in path.glob(frame_pattern) if p.is_file()
                        and (frame_pattern != DEFAULT_PATTERN
                             or p.suffix.lower() in (".tif", ".tiff"))), key=_natural_key)
        if not files:
            raise RecordingError(
                f"{path}: no file matches '{frame_pattern}' in this folder; give a folder of TIFF "
                "frames (or set frame_pattern)"
            )
        check_one_series(path, files, frame_pattern)
        first = _read_2d(files[0])
        _check_dtype(files[0], first.dtype)
        _check_frame_size(files[0], first.shape)
        check_same_frames(files, first)
        log.info("replay movie: %d frames from %s (%s)", len(files), path, frame_pattern)
        return _FolderMovie(path, files, first)
    if not path.is_file():
        raise RecordingError(f"{path}: movie not found; give a TIFF stack, an NDTiff data set "
                             "or a folder of frames")
    return _open_tiff(path)


def _open_tiff(path: Path) -> Movie:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype = tuple(series.shape), np.dtype(series.dtype)
            axes = str(series.axes)
            series_pages = len(series.pages)
            many_pages = len(tif.pages) > 1
    except Exception as e:  # tifffile raises many types on a damaged or foreign file
        raise RecordingError(f"{path}: not a readable TIFF file ({e}); give a TIFF stack") from e
    _check_dtype(path, dtype)
    _one_channel(path, shape, axes)
    squeezed = tuple(n for n in shape if n != 1)
    if len(squeezed) == 2 and many_pages:  # pages written one by one, each its own series
        from smartscope.sim.replay.pages import open_pages

        movie = open_pages(path, None)
        _check_frame_size(path, movie.shape)
        log.info("replay movie: %s, %d pages of %d x %d", path, movie.n_frames, *movie.shape)
        return movie
    if len(squeezed) == 2 and len(shape) == 2:
        raise RecordingError(
            f"{path}: one {shape[0]} x {shape[1]} image, not a movie; give a T x Y x X stack "
            "(or a folder of frames)"
        )
    if len(squeezed) not in (2, 3):
        raise RecordingError(
            f"{path}: shape {shape} is not T x Y x X; save one channel, one z plane and one "
            "position as a T x Y x X stack"
        )
    if len(squeezed) == 2:  # T = 1 written as (1, Y, X) or with other unit axes
        squeezed = (1, *squeezed)
    _check_frame_size(path, squeezed[1:])
    data: np.ndarray
    try:
        data = tifffile.memmap(path, mode="r")
    except Exception:  # compressed or tiled: not mappable
        if series_pages == squeezed[0]:  # one page per frame: decode each when shown
            from smartscope.sim.replay.pages import open_pages

            log.info("replay movie: %s, %d frames of %d x %d, read page by page", path,
                     *squeezed)
            return open_pages(path, squeezed[0])
        data = np.asarray(tifffile.imread(path))  # frames split over pages: read it whole
    if data.shape != squeezed:
        data = data.reshape(squeezed)
    log.info("replay movie: %s, %d frames of %d x %d", path, *squeezed)
    return _ArrayMovie(path, data, "tiff")


def _open_ndtiff(path: Path) -> Movie:
    try:
        from ndstorage import Dataset
    except ImportError as e:  # pragma: no cover - installed with pycromanager
        raise RecordingError(f"{path}: reading NDTiff needs ndstorage: pip install "
                             "ndstorage") from e
    try:
        ds = Dataset(str(path))
    except Exception as e:  # ndstorage raises many types on a damaged data set
        raise RecordingError(f"{path}: not a readable NDTiff data set ({e})") from e
    coords = [dict(c) for c in ds.get_image_coordinates_list()]
    varying = sorted({k for c in coords for k in c
                      if len({str(d.get(k)) for d in coords}) > 1} - {"time"})
    if varying:
        ds.close()
        raise RecordingError(
            f"{path}: the data set varies along {', '.join(varying)} besides time; replay needs "
            "one channel, one z plane and one position (T x Y x X)"
        )
    coords.sort(key=lambda c: int(c.get("time", 0)))
    first = np.asarray(ds.read_image(**coords[0]))
    if first.ndim != 2:
        ds.close()
        raise RecordingError(f"{path}: images have shape {first.shape}; give Y x X images")
    meta0 = ds.read_metadata(**coords[0])
    pixel = meta0.get("PixelSize_um") or None
    interval = None
    if len(coords) > 1:
        t0 = meta0.get("ElapsedTime-ms")
        t1 = ds.read_metadata(**coords[-1]).get("ElapsedTime-ms")
        if t0 is not None and t1 is not None and float(t1) > float(t0):
            interval = (float(t1) - float(t0)) / 1000.0 / (len(coords) - 1)
    return _NDTiffMovie(path, ds, coords, first, float(pixel) if pixel else None, interval)
