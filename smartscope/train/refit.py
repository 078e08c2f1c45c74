"""``smartscope refit``: train a held-out run's recipe again on all of its labels.

A run of ``smartscope train`` keeps 20 % of its labelled cells for validation: they choose the
kept epoch and fit the calibration temperature and the per-class threshold table. With few cells
per class, those cells are missed in the weights. A refit trains the same recipe (data, classes,
model, augmentation, sampling, batch size, steps per epoch and learning-rate schedule) from
scratch on every labelled crop, train and validation, and keeps the last epoch: nothing is left
to choose an epoch by.

Epochs: with a decaying learning rate (``--lr-decay``) the whole schedule, ``max_epochs``: its
end is part of the recipe, while the held-out run's kept epoch was picked among the last epochs
by a validation score that swings from epoch to epoch, and the rate there is already near its
floor. With a constant rate the schedule has no end, and the held-out run's kept epoch is used.

Honesty: a model cannot be calibrated on crops it was trained on, so the card takes the
temperature and the threshold table of the held-out run (the same recipe on 80 % of the data),
and says so in its ``refit`` section; the test folders recorded by the run are scored as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from smartscope.classify.card import CARD_FILE, ModelCard
from smartscope.errors import ModelBundleError, TrainingDataError
from smartscope.train import runs
from smartscope.train.export import export_run
from smartscope.train.pipeline import (
    Inputs,
    TrainRequest,
    _fit,
    as_paths,
    load_inputs,
    timing_summary,
)
from smartscope.train.recipe import (
    _INT,
    RECIPE,
    SEED_MAX,
    Recipe,
    check_value,
    read_recipe,
    recipe_of,
)
from smartscope.train.reports import plot_curves
from smartscope.train.sgan import INTERRUPTED

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RefitRequest:
    """Everything ``smartscope refit`` needs.

    Attributes
    ----------
    run : run folder of the held-out ``smartscope train`` run whose recipe is trained again
    out : run folder to write
    seed : seeds the weights, batches and augmentation (default: the held-out run's seed); the
        labelled crops are those of the held-out run whatever the seed
    epochs : train this many epochs of the schedule (default: see the module docstring)
    data_root : find the run's folders as ``DATA_ROOT/<parent>/<name>`` (moved data, or a run
        of an older ``smartscope train`` that recorded folder names only)
    name : model name in the card (default: the run folder's name)
    overwrite : replace an earlier run in ``out``
    """

    run: Path
    out: Path
    seed: int | None = None
    epochs: int | None = None
    data_root: Path | None = None
    name: str | None = None
    overwrite: bool = False


def check_source(run: Path) -> tuple[dict, ModelCard]:
    """The held-out run's ``run.json`` and card, refusing what cannot be refitted.

    Raises
    ------
    TrainingDataError
        If ``run`` is not a finished, exported ``smartscope train`` run (being written, left by
        a killed training, interrupted, a transfer or itself a refit).
    """
    run = Path(run)
    staged = runs.STAGED.match(run.name)
    if staged and run.is_dir():
        pid = int(staged["pid"])
        final = run.with_name(staged["name"])
        if runs.pid_alive(pid):
            raise TrainingDataError(
                f"RUN_DIR {run}: a training is still writing it (process {pid}); wait until it "
                f"ends and give the folder it becomes, {final}")
        if runs.killed_with_checkpoint(run):
            raise TrainingDataError(
                f"RUN_DIR {run}: left by a run that was killed (process {pid} has ended) after "
                f"its training; it holds the checkpoint: rename it (to {final.name}) and run "
                "`smartscope export` on it")
        raise TrainingDataError(
            f"RUN_DIR {run}: left by a training that was killed (process {pid} has ended); it "
            "holds no finished run: train again")
    if not run.is_dir():
        what = "is a file, not a run folder" if run.exists() else "not found"
        raise TrainingDataError(f"RUN_DIR {run}: {what}; give the --out folder of a finished "
                                "`smartscope train`")
    if (run / CARD_FILE).is_file() and not (run / runs.INFO_JSON).is_file():
        where = (f"give the run folder that holds it, {run.resolve().parent}"
                 if (run.resolve().parent / runs.INFO_JSON).is_file() else
                 "a bundle records no recipe; give the run folder of the `smartscope train` "
                 "that made it")
        raise TrainingDataError(f"RUN_DIR {run}: a model bundle, not a run folder; {where}")
    try:
        info = runs.load_info(run, require=("classes", "method", "training"))
    except ModelBundleError as e:
        raise TrainingDataError(f"RUN_DIR: {e}") from e
    t = info["training"]
    if not isinstance(t, dict):
        raise TrainingDataError(f"RUN_DIR {run}: run.json field 'training' is not a section; "
                                "restore the file")
    stop = str(t.get("stop_reason", ""))
    if stop.startswith(INTERRUPTED):
        raise TrainingDataError(
            f"RUN_DIR {run}: its training was {stop.split(';')[0]}: its schedule did not run "
            "out, so its calibration and thresholds are not those of the recipe; train it to "
            "the end first")
    if info.get("refit"):
        raise TrainingDataError(
            f"RUN_DIR {run}: is itself a refit (of {info['refit'].get('source_run')}); refit the "
            "held-out run it repeats")
    if info["method"] not in ("sgan", "supervised-only"):
        raise TrainingDataError(f"RUN_DIR {run}: a {info['method']} run; refit repeats runs of "
                                "`smartscope train`")
    bundle = run / runs.BUNDLE_DIR
    if not (bundle / CARD_FILE).is_file():
        raise TrainingDataError(f"RUN_DIR {run}: has no exported bundle ({bundle / CARD_FILE} "
                                "missing); run `smartscope export` on it first")
    try:
        card = ModelCard.load(bundle)
    except ModelBundleError as e:
        raise TrainingDataError(f"RUN_DIR: {e}") from e
    where = f"{run / runs.INFO_JSON}: field"
    for name, lowest in (("steps_per_epoch", 1), ("batch_size", 2), ("best_epoch", 1)):
        if name not in t and name != "best_epoch":
            raise TrainingDataError(f"{where} training.{name} missing; restore the file or "
                                    "train the run again")
        check_value(t.get(name), f"training.{name}", _INT, lowest, nullable=name == "best_epoch",
                    where=where)
    return info, card


def default_epochs(info: dict, loop_max_epochs: int, lr_decay: bool) -> int:
    """The schedule's end with a decaying learning rate, else the held-out run's kept epoch."""
    best = info["training"].get("best_epoch") or loop_max_epochs
    return loop_max_epochs if lr_decay else max(1, best)


def _load_checked(recipe: Recipe, info: dict, run: Path) -> tuple[TrainRequest, Inputs]:
    """Load the run's folders and refuse any whose crops differ from those it recorded."""
    req = recipe.request
    inp = load_inputs(req)
    if tuple(inp.labelled.classes) != tuple(info["classes"]) and req.classes is None:
        req = replace(req, classes=tuple(info["classes"]))  # an older run given --classes
        inp = load_inputs(req)
    if tuple(inp.labelled.classes) != tuple(info["classes"]):
        raise TrainingDataError(
            f"labelled folders {', '.join(map(str, as_paths(req.labelled)))}: classes "
            f"{', '.join(inp.labelled.classes)} now, {', '.join(info['classes'])} in {run}; "
            "restore the folders")
    for path, name in zip(as_paths(req.labelled), recipe.labelled_names, strict=True):
        recorded, now = recipe.folder_sha256.get(name), inp.folder_sha256.get(name)
        if recorded is not None and now != recorded:
            raise TrainingDataError(
                f"labelled folder {path}: its crops changed since {run} was trained (sha256 "
                f"{str(now)[:12]}... now, {recorded[:12]}... recorded); restore them, or train "
                "and refit anew")
    hashes = info["training"].get("data_sha256") or {}
    for what, key, crops, folders in (("labelled", "labelled_used", inp.labelled, req.labelled),
                                      ("unlabelled", "unlabelled_used", inp.unlabelled,
                                       req.unlabelled),
                                      ("test", "test", inp.test, req.test)):
        recorded = hashes.get(key)
        if crops is None or recorded in (None, crops.sha256):
            continue
        done, fix = (("scored", "restore them, so that the scores compare") if what == "test"
                     else ("trained", "restore them, or train and refit anew"))
        raise TrainingDataError(
            f"{what} folders {', '.join(map(str, as_paths(folders)))}: their crops differ from "
            f"those {run} was {done} on (sha256 {crops.sha256[:12]}... now, {recorded[:12]}... "
            f"recorded); {fix}")
    return req, inp


def refit_run(req: RefitRequest, on_epoch: Callable[[dict], None] | None = None, *,
              on_start: Callable[[str], None] | None = None, out_option: str = "out",
              overwrite_option: str = "overwrite=True") -> dict:
    """Train a held-out run's recipe on all its labels, export the int8 bundle, score the
    run's test folders; returns ``metrics.json``. ``on_start`` is given one line saying what
    is trained (crops, epochs, seed) before the first epoch; each record given to ``on_epoch``
    carries ``epochs_planned``.

    Raises
    ------
    TrainingDataError
        For a run that cannot be refitted (see :func:`check_source`), folders not found, or
        folders whose crops changed since the run (their recorded sha256).
    OutputError
        For an ``out`` that overlaps the run or its data, or holds other files.
    """
    run = Path(req.run)
    if req.seed is not None and (isinstance(req.seed, bool) or not 0 <= req.seed <= SEED_MAX):
        raise TrainingDataError(f"--seed {req.seed}: give a whole number from 0 to {SEED_MAX}")
    info, card = check_source(run)
    recipe = read_recipe(info, run, req.data_root)
    t = info["training"]
    loop = recipe.request.loop
    epochs = req.epochs if req.epochs is not None else default_epochs(
        info, loop.max_epochs, loop.lr_decay)
    if req.epochs is None and epochs > loop.max_epochs:
        raise TrainingDataError(
            f"{run / runs.INFO_JSON}: field training.best_epoch: {epochs} is beyond the "
            f"{loop.max_epochs}-epoch schedule of its recipe; restore the file, or give --epochs")
    if not 1 <= epochs <= loop.max_epochs:
        raise TrainingDataError(f"--epochs {epochs}: the run's schedule has {loop.max_epochs} "
                                f"epochs; give 1 to {loop.max_epochs}")
    src, inp = _load_checked(recipe, info, run)
    seed = src.seed if req.seed is None else req.seed
    fit_req = replace(
        src, out=Path(req.out), seed=seed, name=req.name, overwrite=req.overwrite, folds=0,
        baseline=False, loop=replace(loop, steps_per_epoch=t["steps_per_epoch"],
                                     batch_cap=t["batch_size"], keep_last=True,
                                     stop_after_epochs=epochs, max_minutes=None))
    inputs = (*as_paths(src.labelled), *as_paths(src.unlabelled), *as_paths(src.test), run)
    with runs.staged_out(req.out, req.overwrite, inputs, out_option, overwrite_option) as out:
        _refit_into(fit_req, inp, info, card, run, out, on_epoch, on_start)
        return runs.load_metrics(out)


def _refit_into(req: TrainRequest, inp: Inputs, src_info: dict, card: ModelCard, run: Path,
                out: Path, on_epoch: Callable[[dict], None] | None,
                on_start: Callable[[str], None] | None = None) -> None:
    every = inp.labelled
    t = src_info["training"]
    planned = req.loop.stop_after_epochs or req.loop.max_epochs
    counts = ", ".join(f"{k} {v}" for k, v in every.counts().items())
    start = (f"refit of {run.name}: {req.method} on all {len(every)} labelled crops ({counts}), "
             f"{planned} of its {req.loop.max_epochs}-epoch schedule, {req.loop.steps_per_epoch} "
             f"steps each, last epoch kept, seed {req.seed}")
    log.info("%s", start)
    if on_start is not None:
        on_start(start)

    def each(record: dict) -> None:
        if on_epoch is not None:
            on_epoch({**record, "epochs_planned": planned})

    result = _fit(req, every, every, inp.unlabelled, req.seed, each)
    runs.save_checkpoint(out, result.discriminator, result.generator)
    plot_curves(result.history, out / runs.CURVES_PNG,
                f"refit of {run.name}, seed {req.seed} (scores on the training crops)")
    keras.backend.clear_session()
    n_val = sum((t.get("label_counts") or {}).get("validation", {}).values())
    refit = {
        "source_run": run.name, "source_seed": src_info.get("seed"),
        "source_best_epoch": t.get("best_epoch"), "source_epochs": t.get("epochs"),
        "schedule_epochs": req.loop.max_epochs, "epochs": len(result.history),
        "seed": req.seed, "label_counts": every.counts(),
        "source_label_counts": t.get("label_counts"),
        "calibration_and_thresholds": f"from {run.name}: fitted on its validation split "
                                      f"({n_val} crops), which this model was trained on",
        "calibration": None if card.calibration is None else {
            **card.calibration.model_dump(),
            "fitted_on": f"{card.calibration.fitted_on} of the held-out run {run.name}"},
        "thresholds": None if card.thresholds is None else {
            **card.thresholds.model_dump(), "set": f"{card.thresholds.set} of the held-out run "
                                                   f"{run.name} (same recipe, 80 % of the labels)"},
    }
    hashes = {"labelled_used": every.sha256, "train": every.sha256}
    if inp.unlabelled is not None:
        hashes["unlabelled_used"] = inp.unlabelled.sha256
    if inp.test is not None:
        hashes["test"] = inp.test.sha256
    stop = result.stop_reason
    training = {
        **t, "label_counts": {"train": every.counts(), "validation": {}, "total": every.counts()},
        "split": f"none: refit on every labelled crop (train and validation of {run.name})",
        "data_sha256": hashes, "epochs": len(result.history), "best_epoch": len(result.history),
        "training_s": round(result.elapsed_s, 1), "stop_reason": stop, "patience": None,
        "batch_size": result.batch_size, "steps_per_epoch": result.steps_per_epoch,
    }
    n_train = sum((t.get("label_counts") or {}).get("train", {}).values())
    notes = [f"Refit: the recipe of {run.name} trained from scratch on all {len(every)} labelled "
             f"crops (its {n_train} training and {n_val} validation crops), "
             f"{len(result.history)} of {req.loop.max_epochs} epochs, last epoch kept, "
             f"seed {req.seed}. The calibration temperature and the threshold table are those "
             f"of {run.name} (the same recipe on 80 % of the labels, fitted on its validation "
             "split): nothing is held out to fit them on this model."]
    if stop.startswith(INTERRUPTED):
        notes.append(f"{stop}: fewer epochs than the schedule")
    metrics = {"method": req.method, "classes": list(every.classes), "seed": req.seed,
               "timing": timing_summary(result), "refit": {k: v for k, v in refit.items()
                                                           if k not in ("thresholds",)}}
    info = {"name": req.name or Path(req.out).name,
            "method": req.method, "seed": req.seed, "classes": list(every.classes),
            "training": training, "history": result.history, "notes": notes, "metrics": metrics,
            RECIPE: recipe_of(req, inp.folder_sha256), "refit": refit,
            "crop_um": req.crop_um, "calibrate": False, "test_sets": list(inp.tests)}
    test_set = None
    if inp.tests:
        test_set = np.concatenate([np.full(len(s), i) for i, s in enumerate(inp.tests.values())])
    runs.save_export_data(out, every.x, every.x, every.y,
                          None if inp.test is None else inp.test.x,
                          None if inp.test is None else inp.test.y, test_set)
    runs.save_info(out, info)
    export_run(out)
