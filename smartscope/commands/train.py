"""``smartscope train | transfer | export | evaluate``: make and score int8 model bundles.

TensorFlow is imported inside the command bodies only (``evaluate`` never imports it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

SIZE_NAMES = ("fast", "paper", "light", "tiny")
DEFAULT_CROP_UM = 20.64
FLAGS = {"out_option": "--out", "overwrite_option": "--overwrite"}
"""How the training commands name a request's ``out`` and ``overwrite`` in messages."""
"""The field new models are trained for, um (``smartscope.train.models.DEFAULT_CROP_UM``; kept
here too so that ``--help`` does not import TensorFlow)."""


def _classes(values: list[str] | None) -> tuple[str, ...] | None:
    """``--classes a,b --classes c`` -> ("a", "b", "c"); None when not given."""
    if not values:
        return None
    names = tuple(n.strip() for v in values for n in v.split(",") if n.strip())
    return names or None


def _setup_tensorflow(threads: int | None) -> None:
    from smartscope.train.tfsetup import setup_tensorflow

    setup_tensorflow(threads)


@contextlib.contextmanager
def abandoned_on_interrupt(out: Path) -> Iterator[None]:
    """Around a training command: SIGTERM outside the epochs abandons the run as a second
    Ctrl-C does (its staging folder removed, not left by a killed process), and an abandoned
    run says so in one line (exit code 130)."""
    from smartscope.train.interrupt import sigterm_as_ctrl_c

    try:
        with sigterm_as_ctrl_c():
            yield
    except KeyboardInterrupt:
        typer.echo(f"interrupted: the run was abandoned; nothing was written to {out}", err=True)
        raise typer.Exit(130) from None


def _progress(quiet: bool):
    def show(record: dict) -> None:
        if quiet:
            return
        from smartscope.train.sgan import format_record

        stage = record.get("stage")
        if stage is None:
            stage = ""
        else:  # transfer stages are numbered; the baseline is named
            stage = f"{stage} " if isinstance(stage, str) else f"stage {stage} "
        typer.echo(f"{stage}epoch {record['epoch']:3d} ({record['steps']} steps)  "
                   f"{format_record(record)}", err=True)
    return show


def _summary(out: Path, metrics: dict) -> None:
    agree = metrics.get("int8_vs_float", {})
    lines = [f"run folder: {out}", f"bundle:     {out / 'bundle'}"]
    timing = metrics.get("timing", {})
    if "training_s" in timing:
        kept = ("the last kept" if "refit" in metrics  # nothing held out to choose by
                else f"best {timing['best_epoch']}")
        lines.append(f"training:   {timing['epochs']} epochs, {kept}, "
                     f"{timing['training_s']:.0f} s ({timing['stop_reason']})")
    if "training_int8" in metrics:  # a refit: nothing held out
        fit = metrics["training_int8"]
        lines.append(f"training:   int8 accuracy {fit.get('accuracy')} on the training crops "
                     f"(n={fit.get('n')}; not held out)")
    else:
        val = metrics.get("validation_int8", {})
        lines.append(f"validation: int8 accuracy {val.get('accuracy')} (n={val.get('n')})")
    if "test_int8" in metrics:
        t = metrics["test_int8"]
        lines.append(f"test:       int8 accuracy {t['accuracy']}, balanced {t['balanced_accuracy']}"
                     f", macro F1 {t['macro_f1']} (n={t['n']})")
    if "baseline_supervised_only" in metrics:
        b = metrics["baseline_supervised_only"]
        t = b.get("test_float") or b["validation_float"]
        lines.append(f"baseline:   supervised-only float accuracy {t['accuracy']}, macro F1 "
                     f"{t['macro_f1']} ({'test' if 'test_float' in b else 'validation'})")
    if "kfold" in metrics:
        k = metrics["kfold"]
        lines.append(f"{k['folds']}-fold:     accuracy {k['accuracy']['mean']} +- "
                     f"{k['accuracy']['sd']}, macro F1 {k['macro_f1']['mean']} +- "
                     f"{k['macro_f1']['sd']}")
    if agree:
        lines.append(f"int8/float: top-1 agreement {agree['top1_agreement']}, accuracy int8 "
                     f"{agree['int8_accuracy']} vs float {agree['float_accuracy']} "
                     f"({agree['set']}, n={agree['n']})")
    typer.echo("\n".join(lines))
    stages = [timing, *(v for v in timing.values() if isinstance(v, dict))]
    stopped = [t["stop_reason"] for t in stages if str(t.get("stop_reason", "")).startswith(
        "interrupted")]
    if stopped:  # a complete run of what was trained; exit code 130 as a shell interrupt
        typer.echo(f"the training was {stopped[0]}; the run is complete in {out}", err=True)
        raise typer.Exit(130)


def _protocol_marks(path: Path, bundle: Path) -> dict[str, float]:
    """Phase -> the lowest min_confidence of the protocol's triggers on it. A trigger phase the
    bundle lacks is refused as ``validate`` refuses it (it was left out without a word)."""
    from smartscope.classify.card import CARD_FILE, ModelCard
    from smartscope.classify.runtime import bundle_folder
    from smartscope.protocol import check_phases, load_protocol

    protocol = load_protocol(path)
    folder = bundle_folder(bundle)
    if (folder / CARD_FILE).is_file():  # else the bundle's own error comes when it is loaded
        check_phases(protocol, ModelCard.load(folder).classes, str(path))
    marks: dict[str, float] = {}
    for t in protocol.triggers:
        for phase in t.phase:
            marks[phase] = min(marks.get(phase, 1.0), t.min_confidence)
    return marks


def _threshold_lines(table: dict, marks: dict[str, float] | None) -> None:
    """Print precision / recall per class at each confidence threshold."""
    grid = table["grid"]
    typer.echo(f"precision / recall at confidence >= threshold ({table['set']}):")
    typer.echo(f"{'threshold':<16}" + "".join(f"{g:>12g}" for g in grid if g >= 0.5))
    for c, curve in table["classes"].items():
        cells = []
        for g, p, r in zip(grid, curve["precision"], curve["recall"], strict=True):
            if g < 0.5:
                continue
            ps = "-" if p is None else f"{p:.2f}"
            rs = "-" if r is None else f"{r:.2f}"
            cells.append(f"{ps + '/' + rs:>12}")
        typer.echo(f"{c:<16}" + "".join(cells))
    for phase, t in (marks or {}).items():
        curve = table["classes"].get(phase)
        if curve is None:
            continue
        i = max(j for j, g in enumerate(grid) if g <= t + 1e-9)
        typer.echo(f"protocol threshold {phase} >= {t:g}: precision {curve['precision'][i]} "
                   f"recall {curve['recall'][i]} (at {grid[i]:g})")


Opt = typer.Option


def register(app: typer.Typer) -> None:  # noqa: C901 - one function per command, all small
    @app.command("train")
    def train(
        labelled: Annotated[list[Path], Opt("--labelled", help="Folder with one sub-folder of "
                                            "crops (tif/png/npy) per class; repeat to train on "
                                            "several.")],
        out: Annotated[Path, Opt("--out", "-o", help="Run folder to write.")],
        unlabelled: Annotated[list[Path] | None, Opt(
            "--unlabelled", help="Flat folder (or .npz) of unlabelled crops; needed for SGAN; "
            "repeatable.")] = None,
        test: Annotated[list[Path] | None, Opt(
            "--test", help="Held-out labelled folder: scored only, never used in training; "
            "repeatable (each scored on its own).")] = None,
        classes: Annotated[list[str] | None, Opt(
            "--classes", help="Classes to use, in output order (comma-separated).")] = None,
        labels_per_class: Annotated[int | None, Opt(
            "--labels-per-class", help="Use at most N labelled crops per class (seeded).")] = None,
        unlabelled_count: Annotated[int | None, Opt(
            "--unlabelled-count", help="Use M unlabelled crops (seeded).")] = None,
        folds: Annotated[int, Opt("--folds", help="Stratified k-fold report (0: none).")] = 0,
        seed: Annotated[int, Opt("--seed", help="Seed of sampling, split and training.")] = 0,
        supervised_only: Annotated[bool, Opt(
            "--supervised-only", help="Baseline: the same discriminator without the GAN.")] = False,
        baseline: Annotated[bool, Opt(
            "--baseline", help="Also train --supervised-only on the same split and report it."
        )] = False,
        class_weighted: Annotated[bool, Opt(
            "--class-weighted", help="Weight the supervised loss by inverse class frequency."
        )] = False,
        size: Annotated[str, Opt("--size", help=f"Model size: {', '.join(SIZE_NAMES)} (fast: "
                                 "the paper's networks with 32 first-layer filters).")] = "fast",
        crop_um: Annotated[float, Opt("--crop-um", help="The model's field, um: crops are "
                                      "resampled to it from their pixel size.")] = DEFAULT_CROP_UM,
        pixel_size_um: Annotated[float | None, Opt(
            "--pixel-size-um", help="Pixel size (um) of crop folders without a dataset.json."
        )] = None,
        balanced: Annotated[bool, Opt(
            "--balanced", help="Balanced sampling: classes equally often, and within a class "
            "each --labelled folder equally often.")] = False,
        max_gamma: Annotated[float, Opt(
            "--max-gamma", help="Augment with random gamma up to this factor and flips (1: "
            "off); for mixed raw / contrast-equalised crops.")] = 1.0,
        rotation_deg: Annotated[float, Opt(
            "--rotation-deg", help="Augment with rotations up to +- this angle (180: any).")
        ] = 30.0,
        translation: Annotated[float, Opt(
            "--translation", help="Augment with shifts up to this fraction of the crop.")] = 0.1,
        zoom: Annotated[float, Opt(
            "--zoom", help="Augment with scale changes up to this fraction.")] = 0.1,
        flips: Annotated[bool | None, Opt(
            "--flips/--no-flips", help="Random flips (default: with --max-gamma > 1).")] = None,
        max_downsample: Annotated[float, Opt(
            "--max-downsample", help="Augment with a random loss of resolution: down by up to "
            "this factor and back up (1: off); for sets from different objectives.")] = 1.0,
        noise_sd: Annotated[float, Opt(
            "--noise-sd", help="Augment with Gaussian noise up to this SD (crop range -1..1).")
        ] = 0.0,
        label_smoothing: Annotated[float, Opt(
            "--label-smoothing", help="Supervised targets (1 - a) one-hot + a / K.")] = 0.0,
        dropout: Annotated[float, Opt(
            "--dropout", help="Dropout after each discriminator block.")] = 0.25,
        init: Annotated[Path | None, Opt(
            "--init", help="Start from this checkpoint (run folder or bundle with "
            "discriminator.keras; same classes and field; supervised-only).")] = None,
        lr_decay: Annotated[bool, Opt(
            "--lr-decay", help="Cosine decay of the learning rate to 5 % over --max-epochs.")
        ] = False,
        ema_half_life_epochs: Annotated[float, Opt(
            "--ema-half-life-epochs", help="Validate, keep and export an exponential moving "
            "average of the weights whose memory halves every this many epochs (0: off).")
        ] = 0.0,
        no_calibrate: Annotated[bool, Opt(
            "--no-calibrate", help="Do not fit a softmax temperature on the validation crops."
        )] = False,
        max_epochs: Annotated[int, Opt("--max-epochs", min=1)] = 100,
        patience: Annotated[int, Opt("--patience", min=0, help="Epochs without a better "
                                     "validation accuracy before stopping.")] = 10,
        min_epochs: Annotated[int, Opt("--min-epochs", min=0)] = 5,
        steps_per_epoch: Annotated[int | None, Opt(
            "--steps-per-epoch", min=1, help="Default: one pass over the unlabelled pool.")] = None,
        max_minutes: Annotated[float | None, Opt(
            "--max-minutes", help="Stop after the epoch that exceeds this time.")] = None,
        learning_rate: Annotated[float, Opt("--learning-rate")] = 6e-4,
        no_augment: Annotated[bool, Opt("--no-augment")] = False,
        threads: Annotated[int | None, Opt("--threads", help="CPU threads for TensorFlow.")] = None,
        name: Annotated[str | None, Opt("--name", help="Model name in the card.")] = None,
        overwrite: Annotated[bool, Opt("--overwrite", help="Replace a run in --out.")] = False,
        quiet: Annotated[bool, Opt("--quiet", "-q", help="No per-epoch lines.")] = False,
    ) -> None:
        """Train an SGAN (or the supervised-only baseline) and export an int8 bundle."""
        _setup_tensorflow(threads)
        from smartscope.train.pipeline import TrainRequest, train_run
        from smartscope.train.sgan import SGAN, SUPERVISED_ONLY, LoopConfig

        req = TrainRequest(
            labelled=tuple(labelled), out=out, unlabelled=tuple(unlabelled or ()) or None,
            test=tuple(test or ()) or None, crop_um=crop_um, pixel_size_um=pixel_size_um,
            calibrate=not no_calibrate, balanced=balanced, init=init,
            classes=_classes(classes), labels_per_class=labels_per_class,
            unlabelled_count=unlabelled_count, folds=folds, seed=seed,
            method=SUPERVISED_ONLY if supervised_only else SGAN, size=size, name=name,
            overwrite=overwrite, baseline=baseline, class_weighted=class_weighted,
            loop=LoopConfig(learning_rate=learning_rate, max_epochs=max_epochs, patience=patience,
                            min_epochs=min_epochs, steps_per_epoch=steps_per_epoch,
                            max_minutes=max_minutes, augment=not no_augment,
                            max_gamma=max_gamma, rotation_deg=rotation_deg,
                            translation=translation, zoom=zoom, flips=flips,
                            max_downsample=max_downsample, noise_sd=noise_sd,
                            label_smoothing=label_smoothing, dropout=dropout,
                            lr_decay=lr_decay, ema_half_life_epochs=ema_half_life_epochs),
        )
        with abandoned_on_interrupt(out):
            metrics = train_run(req, on_epoch=_progress(quiet), **FLAGS)
        _summary(out, metrics)

    @app.command("transfer")
    def transfer(
        base: Annotated[Path, Opt("--base", help="Run folder of the base model (or its bundle "
                                  "folder inside it).")],
        labelled: Annotated[Path, Opt("--labelled", help="Folder with one sub-folder per new "
                                      "class.")],
        out: Annotated[Path, Opt("--out", "-o", help="Run folder to write.")],
        classes: Annotated[list[str] | None, Opt(
            "--classes", help="New classes, in output order (comma-separated).")] = None,
        test: Annotated[Path | None, Opt("--test", help="Held-out labelled folder.")] = None,
        pixel_size_um: Annotated[float | None, Opt(
            "--pixel-size-um", help="Pixel size (um) of crop folders without a dataset.json."
        )] = None,
        labels_per_class: Annotated[int | None, Opt(
            "--labels-per-class", help="Use at most N labelled crops per class (seeded).")] = None,
        full: Annotated[bool, Opt("--full", help="Retrain all layers from the base weights "
                                  "(new modality).")] = False,
        unfreeze: Annotated[int, Opt("--unfreeze", help="Conv blocks fine-tuned in stage 2 "
                                     "(at 2e-4).")] = 4,
        head: Annotated[str, Opt("--head", help="matched: a new class named like a base class "
                                 "starts from the base's weights for it; fresh: all new.")
                        ] = "matched",
        folds: Annotated[int, Opt("--folds", help="Stratified k-fold report (0: none).")] = 5,
        seed: Annotated[int, Opt("--seed")] = 0,
        max_epochs: Annotated[int, Opt("--max-epochs", min=1, help="Per stage.")] = 30,
        patience: Annotated[int, Opt("--patience", min=0)] = 6,
        threads: Annotated[int | None, Opt("--threads")] = None,
        name: Annotated[str | None, Opt("--name")] = None,
        overwrite: Annotated[bool, Opt("--overwrite")] = False,
        quiet: Annotated[bool, Opt("--quiet", "-q")] = False,
    ) -> None:
        """New labelling: fresh head on the frozen backbone, then fine-tune the last blocks."""
        _setup_tensorflow(threads)
        from smartscope.train.transfer import TransferRequest, transfer_run, with_stages

        req = with_stages(
            TransferRequest(base=base, labelled=labelled, out=out, classes=_classes(classes),
                            test=test, full=full, unfreeze=unfreeze, folds=folds, seed=seed,
                            pixel_size_um=pixel_size_um, labels_per_class=labels_per_class,
                            name=name, overwrite=overwrite, head=head),  # type: ignore[arg-type]
            max_epochs=max_epochs, patience=patience)
        with abandoned_on_interrupt(out):
            metrics = transfer_run(req, on_epoch=_progress(quiet), **FLAGS)
        _summary(out, metrics)

    @app.command("export")
    def export(
        run_dir: Annotated[Path, typer.Argument(help="Run folder of `smartscope train`.")],
        threads: Annotated[int | None, Opt("--threads")] = None,
    ) -> None:
        """Re-export a run's checkpoint to an int8 bundle and report int8 vs float accuracy."""
        _setup_tensorflow(threads)
        from smartscope.train.export import export_run
        from smartscope.train.runs import load_metrics

        bundle = export_run(run_dir)
        agree = load_metrics(run_dir)["int8_vs_float"]
        typer.echo(f"bundle: {bundle}\nint8/float: top-1 agreement {agree['top1_agreement']}, "
                   f"accuracy int8 {agree['int8_accuracy']} vs float {agree['float_accuracy']} "
                   f"({agree['set']}, n={agree['n']})")

    @app.command("evaluate")
    def evaluate(
        bundle: Annotated[Path, typer.Argument(help="Bundle folder (model.tflite + card).")],
        test: Annotated[Path, Opt("--test", help="Labelled folder, one sub-folder per class.")],
        out: Annotated[Path | None, Opt(
            "--out", "-o", help="Write evaluation.json and confusion_matrix.png here.")] = None,
        threads: Annotated[int, Opt("--threads")] = 1,
        pixel_size_um: Annotated[float | None, Opt(
            "--pixel-size-um", help="Pixel size (um) of the test crops if the folder has no "
            "dataset.json.")] = None,
        protocol: Annotated[Path | None, Opt(
            "--protocol", help="Mark this protocol's trigger thresholds on the plot.")] = None,
    ) -> None:
        """Score a bundle on a labelled test folder with LiteRT (as on the microscope)."""
        from smartscope.train.evaluate import evaluate_bundle

        marks = _protocol_marks(protocol, bundle) if protocol is not None else None
        s = evaluate_bundle(bundle, test, out, num_threads=threads, pixel_size_um=pixel_size_um,
                            marks=marks, out_option="--out")
        typer.echo(f"n={s['n']}  accuracy {s['accuracy']}  balanced accuracy "
                   f"{s['balanced_accuracy']}  macro F1 {s['macro_f1']}")
        typer.echo(f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>8}{'support':>9}")
        called = [sum(col) for col in zip(*s["confusion_matrix"], strict=True)]
        for (c, v), n_called in zip(s["per_class"].items(), called, strict=True):
            recall = "-" if v["recall"] is None else f"{v['recall']:.3f}"
            # a class neither in the test folder nor predicted: no precision or F1 to give
            precision, f1 = (("-", "-") if v["recall"] is None and not n_called
                             else (f"{v['precision']:.3f}", f"{v['f1']:.3f}"))
            typer.echo(f"{c:<16}{precision:>10}{recall:>10}{f1:>8}{v['support']:>9}")
        m = s.get("mitotic_vs_not")
        if m:
            typer.echo(f"mitotic vs not: precision {m['precision']}  recall {m['recall']} "
                       f"({m['n_mitotic']} mitotic of {m['n']})")
        _threshold_lines(s["thresholds"], marks)
        if out is not None:
            typer.echo(f"written: {out / 'evaluation.json'}, {out / 'confusion_matrix.png'}, "
                       f"{out / 'precision_recall.png'}")
