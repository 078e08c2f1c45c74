"""``smartscope refit``: train a held-out run's recipe again on all of its labels.

TensorFlow is imported inside the command body only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartscope.commands.train import (
    FLAGS,
    _setup_tensorflow,
    _summary,
    abandoned_on_interrupt,
)

Opt = typer.Option


def _progress(quiet: bool):
    def show(record: dict) -> None:
        if quiet:
            return
        from smartscope.train.sgan import format_record

        # nothing is held out: the per-epoch scores are those of the (un-augmented) training
        # crops, named fit_ so that they are not read as validation scores
        line = format_record(record).replace("val_", "fit_")
        line = line.split("  best ")[0] + "  " + line.rsplit("  ", 1)[-1]
        of = f" of {record['epochs_planned']}" if "epochs_planned" in record else ""
        typer.echo(f"epoch {record['epoch']:3d}{of} ({record['steps']} steps)  {line}", err=True)
    return show


def _echo(line: str) -> None:
    typer.echo(line, err=True)


def register(app: typer.Typer) -> None:
    @app.command("refit")
    def refit(
        run_dir: Annotated[Path, typer.Argument(help="Run folder of a finished `smartscope "
                                                "train` (its validation split held out).")],
        out: Annotated[Path, Opt("--out", "-o", help="Run folder to write.")],
        seed: Annotated[int | None, Opt(
            "--seed", help="Seed of weights, batches and augmentation (default: the run's); "
            "the labelled crops stay those of the run.")] = None,
        epochs: Annotated[int | None, Opt(
            "--epochs", min=1, help="Epochs of the run's schedule to train (default: all of "
            "a decaying schedule, else the run's kept epoch).")] = None,
        data_root: Annotated[Path | None, Opt(
            "--data-root", help="Find the run's folders as DATA_ROOT/<parent>/<name> (data "
            "moved, or a run that recorded folder names only).")] = None,
        threads: Annotated[int | None, Opt("--threads", help="CPU threads for TensorFlow.")] = None,
        name: Annotated[str | None, Opt("--name", help="Model name in the card.")] = None,
        overwrite: Annotated[bool, Opt("--overwrite", help="Replace a run in --out.")] = False,
        quiet: Annotated[bool, Opt("--quiet", "-q", help="No per-epoch lines.")] = False,
    ) -> None:
        """Train a run's recipe from scratch on all its labels (train + validation), last epoch
        kept; calibration and thresholds from the run; score its test folders."""
        _setup_tensorflow(threads)
        from smartscope.train.refit import RefitRequest, refit_run

        req = RefitRequest(run=run_dir, out=out, seed=seed, epochs=epochs, data_root=data_root,
                           name=name, overwrite=overwrite)
        with abandoned_on_interrupt(out):
            metrics = refit_run(req, on_epoch=_progress(quiet),
                                on_start=None if quiet else _echo, **FLAGS)
        _summary(out, metrics)
