"""``smartscope report RUN_DIR``: write (or rewrite) a run folder's ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_dir: Annotated[Path, typer.Argument(help="Run folder (what 'smartscope run' wrote).")],
        max_thumbnails: Annotated[int, typer.Option(
            "--max-thumbnails", help="Thumbnails for at most this many triggers."
        )] = 200,
        tiff: Annotated[bool, typer.Option(
            "--tiff", help="Also write RUN_DIR/tiff/: ImageJ hyperstacks (one per screening "
            "position, one per follow-up time-lapse and z-stack), calibrated, for Fiji / napari."
        )] = False,
        no_screening_tiff: Annotated[bool, typer.Option(
            "--no-screening-tiff", help="With --tiff: only the follow-ups (the screening stacks "
            "are as large as the screening data)."
        )] = False,
    ) -> None:
        """Write RUN_DIR/report.html: one self-contained page (timeline, every trigger with
        thumbnails, refusals and errors, hook latency, links to the data)."""
        from smartscope.report import write_report

        if tiff:
            from smartscope.report.export import export_tiffs

            for stack in export_tiffs(run_dir, screening=not no_screening_tiff):
                typer.echo(f"tiff: {stack.path} (T, Z, C, Y, X = {stack.shape}, "
                           f"{stack.pixel_size_um} um/px)")
        path = write_report(run_dir, max_thumbnails=max_thumbnails)
        typer.echo(f"report: {path} ({path.stat().st_size / 1024:.0f} kB)")
