"""One crop file read and prepared for the model: its readers (``.tif``, ``.tiff``, ``.png``,
``.npy``), the checks on its pixels, and its resampling from the folder's pixel size to the
model's field (``Geometry``). Used by ``smartscope.train.data``, which reads whole folders
(numpy only, no TensorFlow).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartscope.errors import ImageError, TrainingDataError
from smartscope.vision.crops import field_coverage, refield_crop
from smartscope.vision.dataset import folder_pixel_size
from smartscope.vision.preprocess import normalise, prepare_crop_file_array

log = logging.getLogger(__name__)

CROP_SUFFIXES = (".tif", ".tiff", ".png", ".npy")
"""File name endings read as crops (case-insensitive); other files in a folder are ignored."""
MIN_COVERAGE = 0.25
"""A crop covering less of the model's field than this is refused (a warning below 0.98)."""
MIN_FIELD_PX = 4.0
"""The model's field must span at least this many pixels of a stored crop."""


def is_crop_file(path: Path) -> bool:
    """Whether ``path`` is a crop file (a visible file with a ``CROP_SUFFIXES`` ending)."""
    return path.is_file() and not path.name.startswith(".") and (
        path.suffix.lower() in CROP_SUFFIXES
    )


def _non_finite(arr: np.ndarray) -> int:
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))


@dataclass(frozen=True)
class Geometry:
    """How stored crops become model input.

    Attributes
    ----------
    pixel_size_um : pixel size of the stored crops (None: each crop is resized whole, i.e. it is
        taken to cover the model's field already)
    crop_um : the model's field, um (used with ``pixel_size_um``)
    """

    pixel_size_um: float | None = None
    crop_um: float | None = None

    def prepare(self, arr: np.ndarray) -> np.ndarray:
        if self.pixel_size_um is None or self.crop_um is None:
            return prepare_crop_file_array(arr)
        if arr.ndim == 2:
            self._check_field(arr.shape)
        return normalise(refield_crop(arr, self.pixel_size_um, self.crop_um))

    def _check_field(self, shape: tuple[int, ...]) -> None:
        """Refuse a crop that cannot show the model's field: one covering under a quarter of it
        (a nucleus would not fit; the rest would be made up from the background), or a pixel size
        that puts the whole field in under ``MIN_FIELD_PX`` pixels. Either is a wrong pixel size
        (``dataset.json`` or ``--pixel-size-um``) or a stray file of another size."""
        assert self.pixel_size_um is not None and self.crop_um is not None
        h, w = int(shape[0]), int(shape[1])
        ps, field = self.pixel_size_um, self.crop_um
        where = f"a {h} x {w} px crop at {ps:g} um/px (dataset.json or --pixel-size-um)"
        if field / ps < MIN_FIELD_PX:
            raise ImageError(f"{where} puts the model's {field:g} um field in "
                             f"{field / ps:.2g} px; check the pixel size")
        cover = field_coverage((h, w), ps, field)
        if cover < MIN_COVERAGE:
            raise ImageError(f"{where} covers {100 * cover:.2g} % of the model's {field:g} um "
                             f"field (at least {100 * MIN_COVERAGE:.0f} % needed); check the "
                             "pixel size, or the crop's size")


def folder_geometry(folder: Path, crop_um: float | None, pixel_size_um: float | None) -> Geometry:
    """The geometry of a crop folder: its declared (or given) pixel size and the model's field."""
    ps = folder_pixel_size(folder, pixel_size_um)
    if ps is None and crop_um is not None:
        log.warning("%s: no pixel size declared (dataset.json or --pixel-size-um): its crops "
                    "are taken to cover the model's field of %.2f um", folder, crop_um)
    return Geometry(ps, crop_um)


def warn_coverage(folder: Path, shape: tuple[int, int], geo: Geometry) -> None:
    """Warn when crops of this shape cover less than the model's field (``geo``)."""
    if geo.pixel_size_um is None or geo.crop_um is None:
        return
    cover = field_coverage(shape, geo.pixel_size_um, geo.crop_um)
    if cover < 0.98:
        log.warning("%s: crops of %d x %d px at %.4g um/px cover %.0f %% of the model's "
                    "%.2f um field; the rest reads the crop's background", folder, shape[0],
                    shape[1], geo.pixel_size_um, 100 * cover, geo.crop_um)


def read_crop_file(path: Path, geometry: Geometry | None = None) -> tuple[np.ndarray, str]:
    """Read one crop file and prepare it; returns (64x64 float32 in [-1, 1], sha256 of the bytes).

    ``geometry`` resamples the crop from its pixel size to the model's field (default: resize).

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
        return (geometry or Geometry()).prepare(arr), digest
    except ImageError as e:
        raise TrainingDataError(f"{path}: {e}; fix or remove it") from e
