"""``smartscope crops``: cut every nucleus of some frames into crop files a person can label.

The command line only; the work is ``smartscope.vision.cut.run_crops`` (frames read by
``smartscope.vision.io``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartscope.errors import ImageError


def register(app: typer.Typer) -> None:
    @app.command("crops")
    def crops(
        frames: Annotated[list[Path] | None, typer.Argument(
            help="Image files: single frames or (T, H, W) TIFF stacks, one grey channel.")] = None,
        pixel_size_um: Annotated[float | None, typer.Option(
            "--pixel-size-um", help="Pixel size of the frames in the sample, um/px.")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Output folder (created).")] = None,
        diameter_um: Annotated[float | None, typer.Option(
            "--diameter-um", help="Expected nucleus diameter, um (default: HeLa, 18).")] = None,
        skip_edge: Annotated[bool, typer.Option(
            "--skip-edge", help="Leave out nuclei that touch the frame border.")] = False,
        from_run: Annotated[Path | None, typer.Option(
            "--from-run", help="Instead of FRAMES: the --out folder of a finished `smartscope "
            "run`; every nucleus it classified, with its probabilities.")] = None,
    ) -> None:
        """Detect every nucleus, cut its crop, write crops + index.csv + contact sheets to label."""
        if out is None:
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
        if pixel_size_um is None:
            raise ImageError("--pixel-size-um: give the frames' pixel size in the sample, um/px "
                             "(the camera's pixel divided by the magnification: 6.45 um / 10x "
                             "= 0.645)")
        if not pixel_size_um > 0:
            raise ImageError(f"--pixel-size-um {pixel_size_um}: give a positive pixel size")
        from smartscope.vision.cut import run_crops

        n, sheets = run_crops(frames, pixel_size_um, out, diameter_um, skip_edge,
                                     out_option="--out")
        typer.echo(f"{n} crops, {sheets} contact sheets -> {out}")
