"""``smartscope transfer``: reuse a trained discriminator for a new labelling scheme.

Two stages, as in the paper:

1. a new K'-class head on the frozen backbone (learning rate 6e-4); with ``head="matched"``
   (the default) a new class named like a base class starts from the base's logit weights for
   it, the others fresh;
2. fine-tuning of the last ``unfreeze`` convolution blocks (default all four) and the head at
   2e-4. The paper fine-tuned two or three blocks at a low rate; between two labs' HeLa sets
   (docs/training.md) every block at 2e-4 with the matched head was what beat training from
   scratch on 10-20 labels per class (four seeds), because the early filters must adapt to the
   other microscope's contrast while the head keeps what the base knows about shared classes.

Both stages augment with random gamma (up to 1.6) and flips besides the paper's augmentation.

``full=True`` instead retrains every layer from the base weights in one stage (the paper needed
this for a new imaging modality, DIC). The supervised loss is class-weighted
(n / (K * n_k)) because new labellings are usually unbalanced, and early stopping follows the
validation balanced accuracy (mean per-class recall) to match.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from smartscope.errors import TrainingDataError
from smartscope.train import data as d
from smartscope.train import runs
from smartscope.train import splits as sp
from smartscope.train.export import export_run
from smartscope.train.kfold import kfold_report
from smartscope.train.models import (
    ModelSize,
    build_discriminator,
    classifier_head,
    conv_block_names,
)
from smartscope.train.pipeline import class_weights
from smartscope.train.reports import classification_scores, plot_curves
from smartscope.train.sgan import (
    INTERRUPTED,
    SUPERVISED_ONLY,
    LoopConfig,
    LoopResult,
    predict_probs,
    run_loop,
)
from smartscope.vision.preprocess import CROP_UM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferRequest:
    """Everything ``smartscope transfer`` needs.

    Attributes
    ----------
    base : run folder of the base model (or its bundle folder inside it)
    labelled : folder with one sub-folder per new class
    out : run folder to write
    classes : new class names in output order (default: every class folder)
    test : held-out labelled folder, scored only
    full : retrain every layer from the base weights (one stage)
    unfreeze : convolution blocks fine-tuned in stage 2 (default 4, all; 2 or 3 in the paper)
    stage1, stage2 : loop settings of the two stages
    folds : stratified k-fold report (0 = none)
    seed : seeds the split, batches and augmentation
    head : ``"matched"``: a new class named like a base class starts from the base's logit
        weights of that class (the others fresh); ``"fresh"``: every class starts fresh
    """

    base: Path
    labelled: Path
    out: Path
    classes: tuple[str, ...] | None = None
    test: Path | None = None
    full: bool = False
    unfreeze: int = 4
    stage1: LoopConfig = field(default_factory=lambda: LoopConfig(
        max_epochs=30, patience=6, monitor="balanced_accuracy", max_gamma=1.6))
    stage2: LoopConfig = field(default_factory=lambda: LoopConfig(
        learning_rate=2e-4, max_epochs=30, patience=6, monitor="balanced_accuracy",
        max_gamma=1.6))
    folds: int = 5
    seed: int = 0
    val_fraction: float = 0.2
    name: str | None = None
    overwrite: bool = False
    pixel_size_um: float | None = None
    labels_per_class: int | None = None
    head: Literal["matched", "fresh"] = "matched"


def new_discriminator(base: keras.Model, n_classes: int, classes: Sequence[str] = (),
                      base_classes: Sequence[str] = ()) -> keras.Model:
    """A discriminator with the base's convolution weights and a new n_classes head.

    The head is fresh, except that a new class named like one of ``base_classes`` (the base's
    classes in its output order) starts from the base's logit weights of that class.
    """
    filters = tuple(base.get_layer(n).filters for n in conv_block_names(base))
    if len(filters) != 4:
        raise TrainingDataError(f"base model has {len(filters)} conv blocks; expected 4")
    dropout = base.get_layer("drop1").rate
    model = build_discriminator(n_classes, ModelSize(disc_filters=filters), dropout)
    for name in conv_block_names(base):
        model.get_layer(name).set_weights(base.get_layer(name).get_weights())
    matched = [(k, list(base_classes).index(c)) for k, c in enumerate(classes)
               if c in base_classes]
    if matched:
        kernel, bias = (np.array(w) for w in model.get_layer("logits").get_weights())
        base_kernel, base_bias = base.get_layer("logits").get_weights()
        if base_kernel.shape[0] != kernel.shape[0] or base_kernel.shape[1] != len(base_classes):
            raise TrainingDataError(f"base model's logits layer is {base_kernel.shape}, not "
                                    f"({kernel.shape[0]}, {len(base_classes)} classes)")
        for k, j in matched:
            kernel[:, k], bias[k] = base_kernel[:, j], base_bias[j]
        model.get_layer("logits").set_weights([kernel, bias])
        log.info("head: %d of %d classes start from the base's weights (%s)", len(matched),
                 n_classes, ", ".join(classes[k] for k, _ in matched))
    return model


def _variables(model: keras.Model, names: list[str]) -> Callable[[keras.Model], list]:
    def pick(m: keras.Model) -> list:
        return [v for n in names for v in m.get_layer(n).trainable_variables]
    return pick


def fit_transfer(req: TransferRequest, base: keras.Model, train: d.CropSet, val: d.CropSet,
                 seed: int, on_epoch: Callable[[dict], None] | None = None,
                 base_classes: Sequence[str] = ()) -> tuple[keras.Model, list[LoopResult]]:
    """Run stage 1 and 2 (or the single ``full`` stage); returns the model and stage results.

    ``base_classes`` (the base's classes in output order) seed the head where ``req.head`` is
    ``"matched"``.
    """
    if req.head not in ("matched", "fresh"):
        raise TrainingDataError(f"head (--head) is {req.head!r}; give matched or fresh")
    k = len(train.classes)
    model = new_discriminator(base, k, train.classes,
                              base_classes if req.head == "matched" else ())
    weights = class_weights(train.y, k)
    convs = conv_block_names(model)
    def tagged(stage: int):
        def show(record: dict) -> None:
            if on_epoch is not None:
                on_epoch({**record, "stage": stage})
        return show

    common = dict(x_unlabelled=None, method=SUPERVISED_ONLY, seed=seed, discriminator=model,
                  class_weights=weights)
    if req.full:
        res = run_loop(train.x, train.y, val.x, val.y, k, cfg=req.stage1, on_epoch=tagged(1),
                       **common)
        return res.discriminator, [res]
    if not 1 <= req.unfreeze <= len(convs):
        raise TrainingDataError(f"unfreeze (--unfreeze) is {req.unfreeze}; give 1 to "
                                f"{len(convs)}")
    r1 = run_loop(train.x, train.y, val.x, val.y, k, cfg=req.stage1, on_epoch=tagged(1),
                  trainable=_variables(model, ["logits"]), **common)
    if r1.stop_reason.startswith(INTERRUPTED):  # Ctrl-C: keep stage 1's best, no stage 2
        return r1.discriminator, [r1]
    r2 = run_loop(train.x, train.y, val.x, val.y, k, cfg=req.stage2, on_epoch=tagged(2),
                  trainable=_variables(model, [*convs[-req.unfreeze:], "logits"]), **common)
    return r2.discriminator, [r1, r2]


def transfer_run(req: TransferRequest, on_epoch: Callable[[dict], None] | None = None, *,
                 out_option: str = "out",
    overwrite_option: str = "overwrite=True") -> dict:
    """Transfer, save checkpoint and figures, export the int8 bundle; returns ``metrics.json``.

    ``out_option`` and ``overwrite_option`` name ``req.out`` and ``req.overwrite`` in messages
    (the command line passes its flags).

    Raises
    ------
    ModelBundleError
        If the base has no Keras checkpoint.
    TrainingDataError
        For bad labelled or test input.
    """
    base_dir = runs.find_base_run(req.base)
    with runs.staged_out(req.out, req.overwrite, (req.labelled, req.test, base_dir),
                         out_option, overwrite_option) as out:
        return _transfer_into(req, base_dir, out, on_epoch)


def _transfer_into(req: TransferRequest, base_dir: Path, out: Path,
                   on_epoch: Callable[[dict], None] | None) -> dict:
    base_info = runs.load_base_info(base_dir)
    crop_um = float(base_info.get("crop_um", CROP_UM))
    if req.test is not None:
        d.check_held_out([req.test], [req.labelled])
    geo = {"crop_um": crop_um, "pixel_size_um": req.pixel_size_um}
    labelled = d.load_labelled(req.labelled, req.classes, **geo)
    if req.labels_per_class is not None:
        labelled = sp.subsample_per_class(labelled, req.labels_per_class, req.seed)
    if req.folds:
        sp.stratified_folds(labelled.y, req.folds, req.seed, labelled.classes, req.labelled)
    test = d.load_test(req.test, labelled.classes, **geo) if req.test is not None else None
    base = runs.load_checkpoint(base_dir)
    tr, va = sp.stratified_split(labelled.y, req.val_fraction, req.seed, labelled.groups)
    train, val = labelled.subset(tr), labelled.subset(va)
    sp.batch_size_rule(len(train))
    base_classes = tuple(base_info.get("classes") or ())
    model, stages = fit_transfer(req, base, train, val, req.seed, on_epoch, base_classes)
    runs.save_checkpoint(out, model)
    history: list[dict[str, object]] = []
    for i, res in enumerate(stages, 1):
        offset = len(history)
        history += [{**r, "stage": i, "epoch": r["epoch"] + offset,
                     "best_epoch": r["best_epoch"] + offset} for r in res.history]
    plot_curves(history, out / runs.CURVES_PNG, "transfer" + (" (full)" if req.full else ""))
    val_pred = predict_probs(classifier_head(model), val.x).argmax(1)
    method = "transfer-full" if req.full else f"transfer (head, then last {req.unfreeze} blocks)"
    metrics = {
        "method": method, "classes": list(train.classes), "seed": req.seed,
        "base": {"name": base_info.get("name"), "classes": base_info.get("classes"),
                 "method": base_info.get("method")},
        "timing": {f"stage{i}": {"epochs": len(r.history), "best_epoch": r.best_epoch,
                                 "stop_reason": r.stop_reason, "training_s": round(r.elapsed_s, 1)}
                   for i, r in enumerate(stages, 1)},
        "validation_float": classification_scores(val.y, val_pred, train.classes),
    }
    if req.folds:
        def fit(tr_set: d.CropSet, va_set: d.CropSet, s: int) -> keras.Model:
            return fit_transfer(req, base, tr_set, va_set, s, base_classes=base_classes)[0]

        metrics["kfold"] = kfold_report(labelled.x, labelled.y, train.classes, req.folds,
                                        req.seed, fit, req.labelled)
    weights = class_weights(train.y, len(train.classes))
    training: dict[str, object] = {
        "base_run": Path(base_dir).name, "base_classes": base_info.get("classes"),
        "base_data_sha256": base_info.get("training", {}).get("data_sha256"),
        "labelled_folder": Path(req.labelled).name,
        "label_counts": {"train": train.counts(), "validation": val.counts(),
                         "total": labelled.counts()},
        "split": f"stratified {1 - req.val_fraction:.0%}/{req.val_fraction:.0%} "
                 f"train/validation by cell (groups.csv where given), seed {req.seed}",
        "data_sha256": {"labelled_used": labelled.sha256, "train": train.sha256,
                        "validation": val.sha256,
                        **({"test": test.sha256} if test is not None else {})},
        "scheme": method,
        "head": req.head,
        "class_weights": dict(zip(train.classes, map(float, weights), strict=True)),
        "learning_rates": {"stage1": req.stage1.learning_rate,
                           **({} if req.full else {"stage2": req.stage2.learning_rate})},
    }
    if test is not None:
        training["test_counts"] = test.counts()
    info = {
        "name": req.name or Path(req.out).name, "method": "transfer", "seed": req.seed,
        "classes": list(train.classes), "training": training,
        "history": history, "metrics": metrics, "notes": [], "crop_um": crop_um,
        "calibrate": True,
    }
    runs.save_export_data(out, train.x, val.x, val.y, None if test is None else test.x,
                          None if test is None else test.y)
    runs.save_info(out, info)
    export_run(out)
    return runs.load_metrics(out)


def with_stages(req: TransferRequest, **changes) -> TransferRequest:
    """A copy of ``req`` with the same loop changes in both stages (for example max_epochs)."""
    return replace(req, stage1=replace(req.stage1, **changes),
                   stage2=replace(req.stage2, **changes))
