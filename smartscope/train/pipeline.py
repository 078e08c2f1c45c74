"""``smartscope train``: data -> split -> SGAN (or supervised-only) -> checkpoint -> int8 bundle.

The held-out test folder is read only to score the finished model; it never takes part in
training, early stopping or calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np

from smartscope.errors import ModelBundleError, TrainingDataError
from smartscope.train import data as d
from smartscope.train import runs
from smartscope.train import splits as sp
from smartscope.train.export import export_run
from smartscope.train.kfold import kfold_report
from smartscope.train.models import (
    DEFAULT_CROP_UM,
    DEFAULT_SIZE,
    LATENT_DIM,
    SIZES,
    classifier_head,
)
from smartscope.train.reports import classification_scores, plot_curves, plot_grid
from smartscope.train.sgan import (
    INTERRUPTED,
    LR_FLOOR,
    SGAN,
    SUPERVISED_ONLY,
    LoopConfig,
    LoopResult,
    Method,
    predict_probs,
    run_loop,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``smartscope train`` needs.

    Attributes
    ----------
    labelled : folder(s) with one sub-folder of crops per class (several: their union)
    out : run folder to write
    unlabelled : flat folder(s) (or .npz) of unlabelled crops; required for SGAN
    test : held-out labelled folder(s), scored only (each on its own, and together)
    classes : class names to use, in output order (default: every class folder)
    labels_per_class : keep at most this many labelled crops per class (drawn with ``seed``)
    unlabelled_count : keep this many unlabelled crops (drawn with ``seed``)
    folds : stratified k-fold report with this many folds (0 = none)
    seed : seeds subsampling, the split, batches, augmentation and weights
    method : "sgan" or "supervised-only"
    size : model size ("fast", "paper", "light", "tiny"; see ``models.SIZES``)
    loop : epochs, patience, learning rate
    val_fraction : validation share of the labelled crops (stratified)
    name : model name in the card (default: the run folder's name)
    overwrite : replace an earlier run in ``out``
    baseline : also train ``--supervised-only`` on the same split and seed and report it
    class_weighted : weight the supervised loss by n / (K * n_k) (unbalanced classes); early
        stopping then monitors validation balanced accuracy
    crop_um : the model's field, um: crops are resampled to it from their declared pixel size
    pixel_size_um : pixel size of crop folders that declare none (``dataset.json``)
    calibrate : fit a softmax temperature on the validation crops (stored in the card)
    balanced : balanced sampling: every class equally often in a batch, and within a class
        every labelled folder equally often (instead of ``class_weighted``); early stopping
        then monitors validation balanced accuracy
    init : start the discriminator from this checkpoint (a run folder, or a bundle that carries
        its ``discriminator.keras``) instead of random weights: continue training a model with
        other settings (augmentation, learning rate). Its classes, in order, and its field
        (``crop_um``) must be those of this training; supervised-only
    """

    labelled: Path | tuple[Path, ...]
    out: Path
    unlabelled: Path | tuple[Path, ...] | None = None
    test: Path | tuple[Path, ...] | None = None
    classes: tuple[str, ...] | None = None
    labels_per_class: int | None = None
    unlabelled_count: int | None = None
    folds: int = 0
    seed: int = 0
    method: Method = SGAN
    size: str = DEFAULT_SIZE
    loop: LoopConfig = field(default_factory=LoopConfig)
    val_fraction: float = 0.2
    name: str | None = None
    overwrite: bool = False
    baseline: bool = False
    class_weighted: bool = False
    crop_um: float = DEFAULT_CROP_UM
    pixel_size_um: float | None = None
    calibrate: bool = True
    balanced: bool = False
    init: Path | None = None


def as_paths(value: Path | Sequence[Path] | None) -> tuple[Path, ...]:
    """One folder or several -> a tuple of paths (empty for None)."""
    if value is None:
        return ()
    if isinstance(value, (str, Path)):
        return (Path(value),)
    return tuple(Path(v) for v in value)


def folder_label(path: Path) -> str:
    """A short name for a data folder: its last two path parts (``hela_phases/test``)."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


@dataclass(frozen=True)
class Inputs:
    labelled: d.CropSet
    unlabelled: d.CropSet | None
    test: d.CropSet | None
    tests: dict[str, d.CropSet] = field(default_factory=dict)
    folder_sha256: dict[str, str] = field(default_factory=dict)
    """per labelled folder (its label), the hash of its crops before any subsampling"""


def load_inputs(req: TrainRequest) -> Inputs:
    """Read, check and subsample the data of a request (all bad input fails here, before training).

    Raises
    ------
    TrainingDataError
        For missing/empty/unreadable folders or files, a single class, fewer crops than folds,
        a test class absent from training, or SGAN without an unlabelled pool.
    """
    if req.method not in (SGAN, SUPERVISED_ONLY):
        raise TrainingDataError(f"method '{req.method}': use '{SGAN}' or '{SUPERVISED_ONLY}'")
    if req.size not in SIZES:
        raise TrainingDataError(f"model size '{req.size}': use one of {', '.join(SIZES)}")
    if req.method == SGAN and req.unlabelled is None:
        raise TrainingDataError(
            "SGAN training needs unlabelled crops (--unlabelled: a flat folder of crops); or use "
            "method supervised-only (--supervised-only)"
        )
    d.check_held_out(as_paths(req.test), as_paths(req.labelled))
    geo = {"crop_um": req.crop_um, "pixel_size_um": req.pixel_size_um}
    folders = as_paths(req.labelled)
    if not folders:
        raise TrainingDataError("no labelled folder given (--labelled); give at least one")
    sets = [d.load_labelled(f, req.classes, **geo) for f in folders]
    labelled = d.merge_sets(sets, [folder_label(f) for f in folders])
    if req.labels_per_class is not None:
        labelled = sp.subsample_per_class(labelled, req.labels_per_class, req.seed)
    if req.folds:
        sp.stratified_folds(labelled.y, req.folds, req.seed, labelled.classes, folders[0])
    sp.batch_size_rule(len(labelled) - int(round(len(labelled) * req.val_fraction)))
    unlabelled = None
    pools = as_paths(req.unlabelled)
    if pools:
        unlabelled = d.merge_sets([d.load_unlabelled(p, **geo) for p in pools],
                                  [folder_label(p) for p in pools])
        if req.unlabelled_count is not None:
            unlabelled = sp.subsample(unlabelled, req.unlabelled_count, req.seed)
    check_init(req, labelled.classes)
    tests = {folder_label(t): d.load_test(t, labelled.classes, **geo)
             for t in as_paths(req.test)}
    test = d.merge_sets(list(tests.values()), list(tests)) if tests else None
    folder_hashes = {folder_label(f): s.sha256 for f, s in zip(folders, sets, strict=True)}
    return Inputs(labelled, unlabelled, test, tests, folder_hashes)


def check_init(req: TrainRequest, classes: Sequence[str]) -> None:
    """An ``init`` checkpoint must exist and match the classes and field of this training.

    Raises
    ------
    TrainingDataError
        Naming the checkpoint, what differs and what to change.
    """
    if req.init is None:
        return
    if req.method != SUPERVISED_ONLY:
        raise TrainingDataError(f"--init {req.init}: only with --supervised-only (a checkpoint "
                                "holds no generator to continue)")
    try:
        info = runs.load_base_info(runs.find_base_run(Path(req.init)))
    except ModelBundleError as e:
        raise TrainingDataError(f"--init: {e}") from e
    if list(info.get("classes", [])) != list(classes):
        raise TrainingDataError(
            f"--init {req.init}: its classes {', '.join(info.get('classes', []))} differ from "
            f"this training's {', '.join(classes)}; give --classes in its order, or use "
            "`smartscope transfer` for a new labelling")
    size = (info.get("training") or {}).get("model_size", {}).get("name")
    if size is not None and size != req.size:
        raise TrainingDataError(f"--init {req.init}: its model size is '{size}', this "
                                f"training's '{req.size}'; give --size {size}")
    crop = info.get("crop_um")
    if crop is not None and abs(float(crop) - req.crop_um) > 1e-6:
        raise TrainingDataError(f"--init {req.init}: its field is {crop} um, this training's "
                                f"{req.crop_um} um; give --crop-um {crop}")


def data_summary(req: TrainRequest, inp: Inputs, train: d.CropSet, val: d.CropSet) -> dict:
    """The card's ``training`` section: counts per class, split, hashes (sha256), settings."""
    hashes: dict[str, str] = {"labelled_used": inp.labelled.sha256, "train": train.sha256,
                              "validation": val.sha256}
    if inp.unlabelled is not None:
        hashes["unlabelled_used"] = inp.unlabelled.sha256
    if inp.test is not None:
        hashes["test"] = inp.test.sha256
    summary: dict[str, object] = {
        "labelled_folder": ", ".join(folder_label(f) for f in as_paths(req.labelled)),
        "crop_um": req.crop_um,
        "label_counts": {"train": train.counts(), "validation": val.counts(),
                         "total": inp.labelled.counts()},
        "labels_per_class_requested": req.labels_per_class,
        "unlabelled_count": 0 if inp.unlabelled is None else len(inp.unlabelled),
        "split": f"stratified {1 - req.val_fraction:.0%}/{req.val_fraction:.0%} "
                 f"train/validation by cell (groups.csv where given), seed {req.seed}",
        "data_sha256": hashes,
        "model_size": {"name": req.size, **SIZES[req.size].to_dict()},
    }
    if inp.test is not None:
        summary["test_folder"] = ", ".join(inp.tests)
        summary["test_counts"] = ({k: t.counts() for k, t in inp.tests.items()}
                                  if len(inp.tests) > 1 else inp.test.counts())
    return summary


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced weights n / (K * n_k) (classes without examples get weight 0)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.divide(len(y), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
    return w.astype(np.float32)


def _fit(req: TrainRequest, train: d.CropSet, val: d.CropSet, unl: d.CropSet | None,
         seed: int, on_epoch: Callable[[dict], None] | None = None,
         method: Method | None = None) -> LoopResult:
    k = len(train.classes)
    balance = req.class_weighted or req.balanced
    start = (runs.load_checkpoint(runs.find_base_run(Path(req.init)))
              if req.init is not None else None)
    return run_loop(
        train.x, train.y, val.x, val.y, k, discriminator=start,
        x_unlabelled=None if unl is None else unl.x, method=method or req.method, size=req.size,
        cfg=replace(req.loop, monitor="balanced_accuracy") if balance else req.loop,
        seed=seed, on_epoch=on_epoch,
        class_weights=class_weights(train.y, k) if req.class_weighted else None,
        sample_p=(sp.balanced_probabilities(train.y, sp.crop_sources(train)) if req.balanced
                  else None),
    )


def baseline_report(req: TrainRequest, train: d.CropSet, val: d.CropSet,
                    test: d.CropSet | None, unl: d.CropSet | None,
                    on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train ``supervised-only`` on the same split, seed and epoch length; float scores.

    ``on_epoch`` receives each epoch record with ``"stage": "baseline"`` added.
    """
    def tagged(record: dict) -> None:
        if on_epoch is not None:
            on_epoch({**record, "stage": "baseline"})

    res = _fit(req, train, val, unl, req.seed, on_epoch=tagged, method=SUPERVISED_ONLY)
    c_model = classifier_head(res.discriminator)
    report = {"method": SUPERVISED_ONLY, "timing": timing_summary(res),
              "validation_float": classification_scores(
                  val.y, predict_probs(c_model, val.x).argmax(1), train.classes)}
    if test is not None:
        report["test_float"] = classification_scores(
            test.y, predict_probs(c_model, test.x).argmax(1), train.classes)
    keras.backend.clear_session()
    return report


def timing_summary(result: LoopResult) -> dict:
    return {"epochs": len(result.history), "best_epoch": result.best_epoch,
            "stop_reason": result.stop_reason, "batch_size": result.batch_size,
            "steps_per_epoch": result.steps_per_epoch, "step_s": round(result.step_s, 3),
            "training_s": round(result.elapsed_s, 1)}


def train_run(req: TrainRequest, on_epoch: Callable[[dict], None] | None = None, *,
              out_option: str = "out",
    overwrite_option: str = "overwrite=True") -> dict:
    """Train, save the checkpoint and figures, export the int8 bundle; returns ``metrics.json``.

    The run folder is built under a temporary name and moved to ``req.out`` when complete.
    ``out_option`` and ``overwrite_option`` name ``req.out`` and ``req.overwrite`` in messages
    (the command line passes its flags).

    Raises
    ------
    TrainingDataError
        For bad input (see :func:`load_inputs`).
    OutputError
        For an ``req.out`` that holds an earlier run (without ``overwrite``) or other files.
    """
    inputs = (*as_paths(req.labelled), *as_paths(req.unlabelled), *as_paths(req.test))
    with runs.staged_out(req.out, req.overwrite, inputs, out_option, overwrite_option) as out:
        return _train_into(req, out, on_epoch)


def _train_into(req: TrainRequest, out: Path, on_epoch: Callable[[dict], None] | None) -> dict:
    inp = load_inputs(req)
    tr, va = sp.stratified_split(inp.labelled.y, req.val_fraction, req.seed, inp.labelled.groups)
    train, val = inp.labelled.subset(tr), inp.labelled.subset(va)
    log.info("training %s on %d labelled (%d validation), %d unlabelled crops", req.method,
             len(train), len(val), 0 if inp.unlabelled is None else len(inp.unlabelled))
    result = _fit(req, train, val, inp.unlabelled, req.seed, on_epoch)
    runs.save_checkpoint(out, result.discriminator, result.generator)
    c_model = classifier_head(result.discriminator)
    val_pred = predict_probs(c_model, val.x).argmax(1)
    metrics = {
        "method": req.method, "classes": list(train.classes), "seed": req.seed,
        "timing": timing_summary(result),
        "validation_float": classification_scores(val.y, val_pred, train.classes),
    }
    plot_curves(result.history, out / runs.CURVES_PNG, f"{req.method}, seed {req.seed}")
    notes = []
    if result.generator is not None:
        z = keras.random.normal((32, LATENT_DIM), seed=req.seed)
        plot_grid(np.asarray(result.generator(z, training=False)), out / runs.SAMPLES_PNG,
                  "generated crops (best checkpoint)")
    if inp.test is not None:
        overlap = set(inp.test.file_hashes.values()) & set(inp.labelled.file_hashes.values())
        if overlap:
            log.warning("%d test crops are byte-identical to training crops", len(overlap))
            notes.append(f"{len(overlap)} test crops are byte-identical to labelled training crops")
    small = [c for c, n in train.counts().items() if n < 10]
    if small:
        notes.append(f"classes with fewer than 10 training labels: {', '.join(small)}")
    info = {
        "name": req.name or Path(req.out).name, "method": req.method, "seed": req.seed,
        "classes": list(train.classes), "training": {
            **data_summary(req, inp, train, val), "batch_size": result.batch_size,
            "steps_per_epoch": result.steps_per_epoch, "epochs": len(result.history),
            "best_epoch": result.best_epoch, "training_s": round(result.elapsed_s, 1),
            "optimizer": f"Adam lr {req.loop.learning_rate} beta_1 {req.loop.beta_1}"
                         + (f", cosine decay to {LR_FLOOR:g} x over {req.loop.max_epochs} epochs"
                            if req.loop.lr_decay else ""),
            "class_weighted": req.class_weighted, "balanced_sampling": req.balanced,
            "augmentation": req.loop.augment, "max_gamma": req.loop.max_gamma,
            "augmentation_settings": req.loop.augmentation() if req.loop.augment else None,
            "label_smoothing": req.loop.label_smoothing, "dropout": req.loop.dropout,
            "weight_ema_half_life_epochs": req.loop.ema_half_life_epochs,
            "weight_ema_decay_per_step": round(req.loop.ema_decay(result.steps_per_epoch), 6),
            "patience": req.loop.patience, "stop_reason": result.stop_reason,
            "init": None if req.init is None else str(req.init),
        },
        "history": result.history, "notes": notes,
    }
    if result.stop_reason.startswith(INTERRUPTED) and (req.folds or req.baseline):
        notes.append(f"{result.stop_reason}: the baseline and k-fold report were not trained")
    elif req.baseline and req.method == SGAN:
        log.info("training the supervised-only baseline on the same split")
        metrics["baseline_supervised_only"] = baseline_report(req, train, val, inp.test,
                                                              inp.unlabelled, on_epoch)
    if req.folds and not result.stop_reason.startswith(INTERRUPTED):
        def fit(tr_set: d.CropSet, va_set: d.CropSet, s: int) -> keras.Model:
            return _fit(req, tr_set, va_set, inp.unlabelled, s).discriminator

        metrics["kfold"] = kfold_report(inp.labelled.x, inp.labelled.y, train.classes,
                                        req.folds, req.seed, fit, as_paths(req.labelled)[0],
                                        inp.labelled.groups)
    info["metrics"] = metrics
    from smartscope.train.recipe import RECIPE, recipe_of  # it imports this module

    info[RECIPE] = recipe_of(req, inp.folder_sha256)
    info["crop_um"] = req.crop_um
    info["calibrate"] = req.calibrate
    info["test_sets"] = list(inp.tests)
    test_set = (np.concatenate([np.full(len(t), i) for i, t in enumerate(inp.tests.values())])
                if inp.tests else None)
    runs.save_export_data(out, train.x, val.x, val.y,
                          None if inp.test is None else inp.test.x,
                          None if inp.test is None else inp.test.y, test_set)
    runs.save_info(out, info)
    export_run(out)
    return runs.load_metrics(out)


def with_loop(req: TrainRequest, **changes) -> TrainRequest:
    """A copy of ``req`` with loop settings changed (for example ``max_epochs=3``)."""
    return replace(req, loop=replace(req.loop, **changes))
