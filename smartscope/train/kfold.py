"""Stratified k-fold scores of a training recipe (``--folds``), shared by train and transfer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from smartscope.train import data as d
from smartscope.train import splits as sp
from smartscope.train.models import classifier_head
from smartscope.train.reports import classification_scores, mean_sd
from smartscope.train.sgan import predict_probs

log = logging.getLogger(__name__)


def kfold_report(
    x: np.ndarray, y: np.ndarray, classes: Sequence[str], folds: int, seed: int,
    fit: Callable[[d.CropSet, d.CropSet, int], keras.Model], folder: Path | None = None,
    groups: Sequence[str] = (),
) -> dict:
    """Stratified k-fold: fit on k-1 folds (own 80/20 early-stopping split), score the k-th.

    ``fit(train, val, fold_seed)`` returns a model whose softmax head is scored.
    """
    scores = []
    data = d.CropSet(x, y, tuple(str(i) for i in range(len(y))), tuple(classes),
                     groups=tuple(groups))
    for i, (tr, held) in enumerate(sp.stratified_folds(y, folds, seed, classes, folder, groups)):
        part = data.subset(tr)
        inner_tr, inner_val = sp.stratified_split(part.y, 0.2, seed + i, part.groups)
        model = fit(part.subset(inner_tr), part.subset(inner_val), seed + 1000 * (i + 1))
        pred = predict_probs(classifier_head(model), x[held]).argmax(1)
        s = classification_scores(y[held], pred, classes)
        log.info("fold %d/%d: accuracy %.3f", i + 1, folds, s["accuracy"])
        scores.append(s)
        keras.backend.clear_session()
    return {
        "folds": folds,
        "accuracy": mean_sd([s["accuracy"] for s in scores]),
        "balanced_accuracy": mean_sd([s["balanced_accuracy"] for s in scores]),
        "macro_f1": mean_sd([s["macro_f1"] for s in scores]),
        "note": "float Keras model per fold, early stopping on a split of the training folds; "
                "folds and splits keep a cell's crops together where groups.csv says",
    }
