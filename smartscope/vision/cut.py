"""Cut every nucleus of some frames into a crop pool a person can label (``smartscope crops``).

Detection and crop geometry are the package's own (``smartscope.vision``), so a crop written here
is exactly what the classifier sees at run time (before normalisation). Output folder::

    OUT/crops/<crop id>.tif   raw crops, 64 x 64, uint16 for integer frames (float32 otherwise)
    OUT/crops/dataset.json    the crops' pixel size (copy it beside your class folders)
    OUT/index.csv             crop id, file, source file, frame, y, x, area, mean intensity, edge
    OUT/sheets/sheet_NNN.png  contact sheets: enlarged, contrast-stretched crops with their ids

To build a labelled folder, look at the sheets and copy crop files into ``<folder>/<class>/``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from smartscope.errors import ImageError
from smartscope.vision.io import check_scale, read_frames, to_storage, write_crop

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
    from smartscope.vision.scale import scale_mismatch

    for si, path in enumerate(frames):
        stack = read_frames(path)
        check_scale(path, stack.shape, pixel_size_um, diameter_um or DEFAULT_DIAMETER_UM)
        for t, image in enumerate(stack):
            try:
                nuclei, raw = cut_frame(image, pixel_size_um, diameter_um)
            except ImageError as e:
                raise ImageError(f"{path}, frame {t}: {e}") from e
            if t == 0 and len(nuclei) >= 3:  # a frame without nuclei tells nothing
                doubt = scale_mismatch(image, pixel_size_um, diameter_um or DEFAULT_DIAMETER_UM)
                if doubt is not None:
                    log.warning("%s: %s (--pixel-size-um, --diameter-um)", path, doubt)
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
    skip_edge: bool = False, per_sheet: int = SHEET_COLUMNS * SHEET_ROWS, *,
    out_option: str = "out",
) -> tuple[int, int]:
    """Write crops, ``index.csv`` and contact sheets for ``frames`` into ``out``.

    The folder is built under a temporary name and moved into place when complete; ``out`` must
    be new, empty or an earlier output of this function (replaced as a whole), and not an input.
    ``out_option`` names ``out`` in messages (the command line passes its flag).

    Returns
    -------
    (number of crops, number of sheets)
    """
    from smartscope.outputs import check_dir_target, staged_dir

    final = check_dir_target(Path(out), option=out_option, inputs=frames)
    if final.is_dir() and any(final.iterdir()) and not _is_crops_output(final):
        raise ImageError(f"{out_option} {final}: holds files that `smartscope crops` did not "
                         "write; give a new or empty folder")
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
