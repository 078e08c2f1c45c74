"""``smartscope classify``: classify every nucleus of some frames with a model bundle.

Writes one CSV row per nucleus (image, frame, cell, y, x, area_um2, phase, confidence,
touches_edge, p_<class>...) and, on request, overlay PNGs with the nuclei outlined by phase.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Annotated

import typer

from smartscope.errors import ImageError, SmartscopeError
from smartscope.outputs import atomic_file, check_file_target, made_dirs

log = logging.getLogger(__name__)


def overlay_path(base: Path, image: Path, frame: int, single: bool) -> Path:
    """Overlay file for one frame: ``base`` itself when only one frame is classified, else
    ``<base stem>-<image stem>-f<frame>.png`` next to it."""
    if single:
        return base
    return base.with_name(f"{base.stem}-{image.stem}-f{frame:03d}{base.suffix or '.png'}")


def _is_classify_csv(path: Path) -> bool:
    """True when ``path`` is a CSV written by an earlier ``classify`` (its header says so)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().startswith("image,frame,cell,")
    except OSError:
        return False


def run_classify(
    images: list[Path],
    model: Path,
    out_csv: Path,
    pixel_size_um: float | None = None,
    diameter_um: float | None = None,
    overlay: Path | None = None,
    num_threads: int | str = "auto",
) -> tuple[int, int]:
    """Classify every frame of every image; returns (number of frames, number of nuclei)."""
    from smartscope.classify import Classifier, classify_frame
    from smartscope.classify.overlay import is_overlay_png, write_overlay
    from smartscope.vision import DEFAULT_DIAMETER_UM
    from smartscope.vision.io import check_scale, read_frames, tiff_pixel_size_um
    from smartscope.vision.preprocess import REFERENCE_PIXEL_SIZE_UM
    from smartscope.vision.scale import scale_mismatch

    images = [Path(p) for p in images]
    inputs = [*images, Path(model), *(Path(model).glob("*") if Path(model).is_dir() else ())]
    check_file_target(out_csv, option="--out", inputs=inputs, replaceable=_is_classify_csv)
    if overlay is not None and Path(overlay).suffix.lower() != ".png":
        raise ImageError(f"--overlay {overlay}: overlays are written as PNG; give a file name "
                         "ending in .png")
    clf = Classifier(model, num_threads=num_threads)
    stacks = [(p, read_frames(p)) for p in images]
    n_frames_total = sum(len(s) for _, s in stacks)
    targets: dict[tuple[Path, int], Path] = {}
    if overlay is not None:
        for path, frames in stacks:
            for t in range(len(frames)):
                target = overlay_path(Path(overlay), path, t, n_frames_total == 1)
                check_file_target(target, option="--overlay", inputs=[*inputs, out_csv],
                                  replaceable=is_overlay_png)
                targets[path, t] = target
    fields = ["image", "frame", "cell", "y", "x", "area_um2", "phase", "confidence",
              "touches_edge"] + [f"p_{c}" for c in clf.classes]
    out_csv = Path(out_csv)
    n_cells = 0
    with made_dirs(out_csv.parent), atomic_file(out_csv) as tmp_csv, \
            tmp_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for path, frames in stacks:
            px = pixel_size_um or tiff_pixel_size_um(path)
            if px is None:
                px = REFERENCE_PIXEL_SIZE_UM
                log.warning("%s: no pixel size given or stored; assuming %.3f um/px "
                            "(use --pixel-size-um)", path, px)
            check_scale(path, frames.shape, px, diameter_um or DEFAULT_DIAMETER_UM)
            for t, frame in enumerate(frames):
                try:
                    result = classify_frame(frame, px, clf, diameter_um or DEFAULT_DIAMETER_UM,
                                            return_labels=overlay is not None)
                except ImageError as e:
                    raise ImageError(f"{path}, frame {t}: {e}") from e
                for row in result.rows():
                    row = {"image": path.name, "frame": t, **row}
                    row["touches_edge"] = int(row["touches_edge"])
                    writer.writerow(row)
                n_cells += len(result)
                if t == 0 and len(result) >= 3:  # a frame without nuclei tells nothing
                    doubt = scale_mismatch(frame, px, diameter_um or DEFAULT_DIAMETER_UM)
                    if doubt is not None:
                        log.warning("%s: %s (--pixel-size-um, --diameter-um)", path, doubt)
                log.info("%s frame %d: %d nuclei (%.0f ms)", path.name, t, len(result),
                         result.timings_ms["total"])
                if overlay is not None:
                    target = targets[path, t]
                    with made_dirs(target.parent), atomic_file(target) as tmp_png:
                        write_overlay(frame, result, tmp_png, title=f"{path.name} frame {t}")
    return n_frames_total, n_cells


def register(app: typer.Typer) -> None:
    @app.command("classify")
    def classify(
        images: Annotated[list[Path], typer.Argument(
            help="Image files: single frames or (T, H, W) TIFF stacks, one grey channel.")],
        model: Annotated[Path, typer.Option(
            "--model", help="Model bundle folder (model.tflite + model_card.json).")],
        out: Annotated[Path, typer.Option(
            "--out", "-o", help="Output CSV, one row per nucleus.")] = Path("cells.csv"),
        pixel_size_um: Annotated[float | None, typer.Option(
            "--pixel-size-um",
            help="Pixel size in the sample, um/px (default: from the TIFF, else 0.645).")] = None,
        diameter_um: Annotated[float | None, typer.Option(
            "--diameter-um", help="Expected nucleus diameter, um (default 18, HeLa).")] = None,
        overlay: Annotated[Path | None, typer.Option(
            "--overlay", help="Overlay PNG (one per frame when several frames).")] = None,
        threads: Annotated[str, typer.Option(
            "--threads", help="Interpreter threads, or auto: the cores this process may use, "
            "at most 4.")] = "auto",
    ) -> None:
        """Find and classify every nucleus; write a CSV (and overlay PNGs)."""
        if pixel_size_um is not None and pixel_size_um <= 0:
            raise ImageError(f"--pixel-size-um {pixel_size_um}: give a positive pixel size")
        if diameter_um is not None and diameter_um <= 0:
            raise ImageError(f"--diameter-um {diameter_um}: give a positive diameter")
        n_threads: int | str = threads
        if threads != "auto":
            from smartscope.classify.runtime import MAX_THREADS

            if not threads.isdigit() or not 1 <= int(threads) <= MAX_THREADS:
                raise SmartscopeError(f"--threads {threads}: give a number of threads (1 to "
                                      f"{MAX_THREADS}) or auto")
            n_threads = int(threads)
        n_frames, n_cells = run_classify(images, model, out, pixel_size_um, diameter_um,
                                         overlay, n_threads)
        typer.echo(f"{n_cells} nuclei in {n_frames} frames -> {out}")
