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
    ) -> None:
        """Write RUN_DIR/report.html: one self-contained page (timeline, every trigger with
        thumbnails, refusals and errors, hook latency, links to the data)."""
        from smartscope.report import write_report

        path = write_report(run_dir, max_thumbnails=max_thumbnails)
        typer.echo(f"report: {path} ({path.stat().st_size / 1024:.0f} kB)")
