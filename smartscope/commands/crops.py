"""``smartscope crops``: cut every nucleus of some frames into crop files a person can label.

Detection and crop geometry are the package's own (``smartscope.vision``), so a crop written here
is exactly what the classifier sees at run time (before normalisation). Output folder::

    OUT/crops/<crop id>.tif   raw crops, 64 x 64, uint16 for integer frames (float32 otherwise)
    OUT/crops/dataset.json    the crops' pixel size (copy it beside your class folders)
    OUT/index.csv             crop id, file, source file, frame, y, x, area, mean intensity, edge
    OUT/sheets/sheet_NNN.png  contact sheets: enlarged, contrast-stretched crops with their ids

To build a labelled folder, look at the sheets and copy crop files into ``<folder>/<class>/``.
The functions below are also used by ``scripts/build_hela_dataset.py``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from smartscope.errors import ImageError

if TYPE_CHECKING:
    from smartscope.vision import Nuclei

log = logging.getLogger(__name__)

INDEX_FIELDS = (
    "crop_id", "file", "source", "frame", "y", "x", "area_um2", "mean_intensity", "touches_edge",
    "pixel_size_um",
)
"""Columns of ``index.csv`` (y, x in pixels of the source frame; area in um^2; intensity in
camera counts above the local background; the pixel size the frames were cut at, um/px)."""

SHEET_COLUMNS = 8
SHEET_ROWS = 6


@dataclass(frozen=True)
class CropRecord:
    """One cut crop and where it came from."""

    crop_id: str
    source: str
    frame: int
    y: float
    x: float
    area_um2: float
    mean_intensity: float
    touches_edge: bool

    def row(self, file: str) -> dict[str, object]:
        return {
            "crop_id": self.crop_id, "file": file, "source": self.source, "frame": self.frame,
            "y": f"{self.y:.1f}", "x": f"{self.x:.1f}", "area_um2": f"{self.area_um2:.1f}",
            "mean_intensity": f"{self.mean_intensity:.1f}", "touches_edge": int(self.touches_edge),
        }


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
            f"across, {why}; check --pixel-size-um (the sample's, not the camera's) and "
            "--diameter-um"
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


def to_storage(raw: np.ndarray, source_dtype: np.dtype) -> np.ndarray:
    """Raw float crops -> the dtype they are stored in (uint16 for integer frames)."""
    if np.issubdtype(source_dtype, np.integer):
        return np.clip(np.rint(raw), 0, 65535).astype(np.uint16)
    return raw.astype(np.float32)


def write_crop(path: Path, crop: np.ndarray) -> None:
    """Write one crop as a lossless compressed TIFF."""
    import tifffile

    tifffile.imwrite(path, crop, compression="zlib", predictor=True)


def cut_frame(
    image: np.ndarray, pixel_size_um: float, diameter_um: float | None = None
) -> tuple[Nuclei, np.ndarray]:
    """Detect the nuclei of one frame and cut their raw crops (package detection and geometry).

    Returns
    -------
    (Nuclei, raw crops float32 (N, 64, 64))
    """
    from smartscope.vision import DEFAULT_DIAMETER_UM, extract_crops, find_nuclei

    nuclei = find_nuclei(image, pixel_size_um, diameter_um or DEFAULT_DIAMETER_UM)
    raw = extract_crops(image, nuclei.y, nuclei.x, pixel_size_um)
    return nuclei, raw


def iter_crops(
    frames: Sequence[Path], pixel_size_um: float, diameter_um: float | None = None,
    skip_edge: bool = False,
) -> Iterator[tuple[CropRecord, np.ndarray]]:
    """Every nucleus of every frame of ``frames``: (record, crop in storage dtype)."""
    from smartscope.vision import DEFAULT_DIAMETER_UM

    for si, path in enumerate(frames):
        stack = read_frames(path)
        check_scale(path, stack.shape, pixel_size_um, diameter_um or DEFAULT_DIAMETER_UM)
        for t, image in enumerate(stack):
            try:
                nuclei, raw = cut_frame(image, pixel_size_um, diameter_um)
            except ImageError as e:
                raise ImageError(f"{path}, frame {t}: {e}") from e
            crops = to_storage(raw, stack.dtype)
            for k in range(len(nuclei)):
                edge = bool(nuclei.touches_edge[k])
                if skip_edge and edge:
                    continue
                rec = CropRecord(
                    f"s{si}t{t:03d}n{k:03d}", Path(path).name, t, float(nuclei.y[k]),
                    float(nuclei.x[k]), float(nuclei.area_um2[k]),
                    float(nuclei.mean_intensity[k]), edge,
                )
                yield rec, crops[k]


def display_stretch(crop: np.ndarray) -> np.ndarray:
    """A crop as uint8 for viewing: the model's own percentile stretch, gamma 0.8."""
    from smartscope.vision.preprocess import normalise

    v = (normalise(np.asarray(crop, np.float32)) + 1.0) / 2.0
    return (255 * v**0.8).astype(np.uint8)


def contact_sheet(
    crops: Sequence[np.ndarray], captions: Sequence[str], path: Path,
    columns: int = SHEET_COLUMNS, scale: int = 2, caption_colours: Sequence[tuple] | None = None,
) -> Path:
    """Write a PNG grid of enlarged, contrast-stretched crops with a caption above each.

    ``captions`` may hold two lines separated by a newline (e.g. id and label).
    """
    from PIL import Image, ImageDraw, ImageFont

    n = len(crops)
    if n == 0:
        raise ImageError("no crops to put on a contact sheet")
    side = max(np.asarray(c).shape[0] for c in crops) * scale
    lines = max(caption.count("\n") + 1 for caption in captions)
    head = 11 * lines + 2
    rows = (n + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (side + 4), rows * (side + head + 4)), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, (crop, caption) in enumerate(zip(crops, captions, strict=True)):
        tile = Image.fromarray(display_stretch(crop)).resize((side, side), Image.Resampling.NEAREST)
        cx, cy = (k % columns) * (side + 4) + 2, (k // columns) * (side + head + 4) + 2
        sheet.paste(tile, (cx, cy + head))
        colour = caption_colours[k] if caption_colours is not None else (255, 255, 0)
        draw.multiline_text((cx, cy), caption, fill=colour, font=font, spacing=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def run_crops(
    frames: Sequence[Path], pixel_size_um: float, out: Path, diameter_um: float | None = None,
    skip_edge: bool = False, per_sheet: int = SHEET_COLUMNS * SHEET_ROWS,
) -> tuple[int, int]:
    """Write crops, ``index.csv`` and contact sheets for ``frames`` into ``out``.

    The folder is built under a temporary name and moved into place when complete; ``out`` must
    be new, empty or an earlier output of this function (replaced as a whole), and not an input.

    Returns
    -------
    (number of crops, number of sheets)
    """
    from smartscope.outputs import check_dir_target, staged_dir

    final = check_dir_target(Path(out), option="--out", inputs=frames)
    if final.is_dir() and any(final.iterdir()) and not _is_crops_output(final):
        raise ImageError(f"--out {final}: holds files that `smartscope crops` did not write; "
                         "give a new or empty folder")
    with staged_dir(final, replace=True) as stage:  # moved into place when complete
        return _write_crops(frames, pixel_size_um, stage, diameter_um, skip_edge, per_sheet)


def _is_crops_output(folder: Path) -> bool:
    """True when ``folder`` holds an earlier output of ``run_crops`` (and nothing else)."""
    index = folder / "index.csv"
    try:
        with open(index, encoding="utf-8", errors="replace") as fh:
            ours = fh.readline().startswith("crop_id,")
    except OSError:
        return False
    return ours and {p.name for p in folder.iterdir()} <= {"index.csv", "crops", "sheets"}


def _write_crops(frames: Sequence[Path], pixel_size_um: float, out: Path,
                 diameter_um: float | None, skip_edge: bool, per_sheet: int) -> tuple[int, int]:
    crop_dir = out / "crops"
    crop_dir.mkdir(parents=True, exist_ok=True)
    rows, pending, captions, sheets = [], [], [], 0
    for rec, crop in iter_crops(frames, pixel_size_um, diameter_um, skip_edge):
        file = f"crops/{rec.crop_id}.tif"
        write_crop(out / file, crop)
        rows.append({**rec.row(file), "pixel_size_um": f"{pixel_size_um:g}"})
        pending.append(crop)
        captions.append(rec.crop_id)
        if len(pending) == per_sheet:
            contact_sheet(pending, captions, out / "sheets" / f"sheet_{sheets:03d}.png")
            sheets, pending, captions = sheets + 1, [], []
    if pending:
        contact_sheet(pending, captions, out / "sheets" / f"sheet_{sheets:03d}.png")
        sheets += 1
    from smartscope.vision.dataset import write_dataset_info
    from smartscope.vision.preprocess import CROP_UM, INPUT_SIZE

    write_dataset_info(crop_dir, CROP_UM / INPUT_SIZE,
                       f"cut by smartscope crops from frames at {pixel_size_um} um/px")
    with open(out / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    log.info("wrote %d crops and %d contact sheets to %s", len(rows), sheets, out)
    return len(rows), sheets


def register(app: typer.Typer) -> None:
    @app.command("crops")
    def crops(
        frames: Annotated[list[Path] | None, typer.Argument(
            help="Image files: single frames or (T, H, W) TIFF stacks, one grey channel.")] = None,
        pixel_size_um: Annotated[float | None, typer.Option(
            "--pixel-size-um", help="Pixel size of the frames in the sample, um/px.")] = None,
        out: Annotated[Path, typer.Option("--out", help="Output folder (created).")] = Path(),
        diameter_um: Annotated[float | None, typer.Option(
            "--diameter-um", help="Expected nucleus diameter, um (default: HeLa, 18).")] = None,
        skip_edge: Annotated[bool, typer.Option(
            "--skip-edge", help="Leave out nuclei that touch the frame border.")] = False,
        from_run: Annotated[Path | None, typer.Option(
            "--from-run", help="Instead of FRAMES: the --out folder of a finished `smartscope "
            "run`; every nucleus it classified, with its probabilities.")] = None,
    ) -> None:
        """Detect every nucleus, cut its crop, write crops + index.csv + contact sheets to label."""
        if out == Path():
            raise ImageError("--out: give the output folder")
        if from_run is not None:
            if frames or pixel_size_um is not None:
                raise ImageError("--from-run: give either image files (with --pixel-size-um) or "
                                 "--from-run RUN_DIR, not both")
            from smartscope.label.from_run import crops_from_run
            from smartscope.outputs import check_dir_target

            check_dir_target(out, option="--out", inputs=[from_run])
            n = crops_from_run(from_run, out, skip_edge)
            typer.echo(f"{n} crops from {from_run} -> {out} (label them: smartscope label {out} "
                       "--classes ...)")
            return
        if not frames:
            raise ImageError("give image files to cut (or --from-run RUN_DIR)")
        if pixel_size_um is None or pixel_size_um <= 0:
            raise ImageError(f"--pixel-size-um {pixel_size_um}: give a positive pixel size")
        n, sheets = run_crops(frames, pixel_size_um, out, diameter_um, skip_edge)
        typer.echo(f"{n} crops, {sheets} contact sheets -> {out}")
