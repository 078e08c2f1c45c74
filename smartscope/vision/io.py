"""Reading frames and writing crops (numpy + tifffile + scikit-image; no command line).

``read_frames`` reads an image file as a (T, H, W) stack of grey frames and refuses, with a
one-line ``ImageError``, what cannot be a microscope frame (colour, blank, NaN, too small, too
large); ``check_scale`` refuses a pixel size / nucleus diameter pair that finds no nuclei;
``tiff_pixel_size_um`` reads a TIFF's resolution tags; ``to_storage`` and ``write_crop`` store
crops losslessly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smartscope.errors import ImageError

log = logging.getLogger(__name__)


def read_frames(path: Path) -> np.ndarray:
    """Read an image file as a stack of 2-D frames, shape (T, H, W).

    ``.tif``/``.tiff`` files may hold one frame or a (T, H, W) stack; ``.npy`` arrays likewise;
    other formats are read as one grey image.

    Raises
    ------
    ImageError
        If the file is missing, unreadable, or not one grey channel.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file; give the image files in it")
    if not path.is_file():
        raise ImageError(f"{path}: frame file not found; give an existing image file")
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        log.warning("%s: JPEG is lossy; its compression artefacts change the nuclei found and "
                    "their classes: use the microscope's TIFF (or PNG) instead", path)
    if suffix in (".tif", ".tiff"):
        _check_tiff_layout(path)
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        elif suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            from skimage.io import imread

            arr = imread(path)
    except Exception as e:  # readers raise their own types for corrupt files
        raise ImageError(f"{path}: unreadable image ({type(e).__name__}: {e})") from e
    arr = np.asarray(arr)
    if arr.size == 0:
        raise ImageError(f"{path}: the image is empty (shape {arr.shape}); give a non-empty image")
    shape = arr.shape
    arr = np.squeeze(arr)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
        raise ImageError(
            f"{path}: colour image (shape {arr.shape}); save the fluorescence channel alone as "
            "one grey channel"
        )
    if arr.ndim < 2 or min(arr.shape[-2:]) < MIN_FRAME_PX:
        raise ImageError(f"{path}: the image is {' x '.join(map(str, shape))} px, too small "
                         f"to hold a nucleus; give frames of at least {MIN_FRAME_PX} x "
                         f"{MIN_FRAME_PX} px")
    check_frame_size(path, arr.shape[-2:])
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        stack = arr.reshape(-1, *arr.shape[-2:])
        bad = [t for t in range(len(stack)) if not np.isfinite(stack[t]).all()]
        n = int(stack[bad[0]].size - np.isfinite(stack[bad[0]]).sum())
        raise ImageError(f"{path}, frame {bad[0]}: {n} pixels are NaN or infinite"
                         f"{f' ({len(bad)} frames affected)' if len(bad) > 1 else ''}; "
                         "give finite pixel values (the camera's raw frames)")
    if arr.dtype.kind in "iuf" and arr.ndim in (2, 3):
        lo, hi = arr.min(), arr.max()
        top = np.iinfo(arr.dtype).max if arr.dtype.kind in "iu" else None
        if lo == hi and hi != top:
            raise ImageError(
                f"{path}: every pixel is {lo}: the image is blank; check the exposure, the light "
                "source and the shutter"
            )
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim == 3:
        return arr
    raise ImageError(
        f"{path}: image has shape {arr.shape}; give one grey channel: (H, W) or a (T, H, W) stack"
    )


MIN_FRAME_PX = 16
"""Smallest frame side read (a nucleus needs several pixels, plus background around it)."""
MAX_FRAME_MPX = 64.0
"""Largest frame read, in megapixels (8000 x 8000): detection needs about 30 bytes per pixel,
so such a frame takes about 2 GB; larger ones (stitched mosaics) must be cut into fields."""


def check_frame_size(path: Path, shape: Sequence[int]) -> None:
    """Refuse a frame larger than ``MAX_FRAME_MPX`` before it is processed.

    Raises
    ------
    ImageError
        Naming the size and the size that can be taken.
    """
    h, w = int(shape[-2]), int(shape[-1])
    if h * w > MAX_FRAME_MPX * 1e6:
        side = int((MAX_FRAME_MPX * 1e6) ** 0.5)
        raise ImageError(
            f"{path}: frame of {w} x {h} px ({h * w / 1e6:.0f} Mpx) is larger than one frame can "
            f"be (at most {MAX_FRAME_MPX:.0f} Mpx, e.g. {side} x {side} px, about 2 GB of "
            "memory); cut it into fields (tiles) or bin it first"
        )


def check_scale(path: Path, shape: Sequence[int], pixel_size_um: float,
                diameter_um: float) -> None:
    """Refuse a pixel size / nucleus diameter pair that makes nuclei undetectable in frames of
    ``shape``: under 4 px across, or wider than the frame.

    Raises
    ------
    ImageError
        Naming both values and the nucleus size in pixels they give.
    """
    d_px = diameter_um / pixel_size_um
    side = min(int(shape[-2]), int(shape[-1]))
    if d_px < 4 or d_px > side:
        why = "too small to be found" if d_px < 4 else f"wider than the frame ({side} px)"
        raise ImageError(
            f"{path}: nuclei of {diameter_um:g} um at {pixel_size_um:g} um/px are {d_px:.3g} px "
            f"across, {why}; check pixel_size_um (--pixel-size-um: the sample's, not the camera's) "
            "and diameter_um (--diameter-um)"
        )


def _check_tiff_layout(path: Path) -> None:
    """Refuse colour TIFFs (planar or interleaved samples) and oversized frames before reading
    the pixels (the header says both)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            photometric = int(getattr(tif.pages.first, "photometric", 1))
            colour = photometric in (int(tifffile.PHOTOMETRIC.RGB),
                                     int(tifffile.PHOTOMETRIC.YCBCR),
                                     int(tifffile.PHOTOMETRIC.PALETTE))
    except Exception:  # noqa: BLE001 - a corrupt file is reported by the reader itself
        return
    if colour and "S" in axes:
        raise ImageError(
            f"{path}: colour TIFF ({shape[axes.index('S')]} samples per pixel, axes {axes}); "
            "save the fluorescence channel alone as one grey channel (a stack of grey frames: "
            "write it with photometric minisblack)"
        )
    if len(shape) >= 2:
        check_frame_size(path, shape)


def tiff_pixel_size_um(path: Path) -> float | None:
    """Pixel size from a TIFF's resolution tags (ImageJ or micrometre/centimetre units)."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if not isinstance(page, tifffile.TiffPage):  # the first page is never a TiffFrame
                return None
            tags = page.tags
            if "XResolution" not in tags:
                return None
            num, den = tags["XResolution"].value
            if not num:
                return None
            per_unit = den / num  # units per pixel
            unit = (tif.imagej_metadata or {}).get("unit", "")
            res_unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 1
    except (OSError, ValueError, KeyError, tifffile.TiffFileError):
        return None
    if unit in ("micron", "um", "\u00b5m", "\\u00B5m"):
        return float(per_unit)
    if int(res_unit) == 3:  # centimetre
        return float(per_unit * 1e4)
    return None


def to_storage(raw: np.ndarray, source_dtype: np.dtype) -> np.ndarray:
    """Raw float crops -> the dtype they are stored in (uint16 for integer frames)."""
    if np.issubdtype(source_dtype, np.integer):
        return np.clip(np.rint(raw), 0, 65535).astype(np.uint16)
    return raw.astype(np.float32)


def write_crop(path: Path, crop: np.ndarray) -> None:
    """Write one crop as a lossless compressed TIFF."""
    import tifffile

    tifffile.imwrite(path, crop, compression="zlib", predictor=True)
