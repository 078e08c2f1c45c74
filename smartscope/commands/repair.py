"""``smartscope repair RUN_DIR``: make a killed run's data set readable and its status honest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("repair")
    def repair(
        run_dir: Annotated[Path, typer.Argument(help="Run folder written by `smartscope run`.")],
    ) -> None:
        """Rebuild the image index of a killed run from its TIFF files; mark the run killed."""
        from smartscope.acquire.repair import repair_run

        r = repair_run(run_dir)
        if r.dataset is None:
            typer.echo(f"{run_dir}: no image data set; status {r.status_after}")
            return
        index = (f"index rebuilt ({r.index_entries_before} -> {r.images} images)"
                 if r.index_rebuilt else f"index already lists {r.index_entries_before} images")
        status = (f"status {r.status_before} -> {r.status_after}" if r.status_before !=
                  r.status_after else f"status {r.status_after} (unchanged)")
        where = (str(r.dataset) if len(r.datasets) <= 1 else
                 f"{r.dataset} and {len(r.datasets) - 1} follow-up data set(s)")
        typer.echo(f"{where}: {r.images} images on disk; {index}; {status}")
