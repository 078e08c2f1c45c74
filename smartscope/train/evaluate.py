"""``smartscope evaluate``: score an int8 bundle on a labelled test folder with LiteRT.

No TensorFlow here: the bundle runs through :class:`smartscope.classify.Classifier`, exactly as on
the microscope.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from smartscope.classify import Classifier
from smartscope.classify.thresholds import threshold_table
from smartscope.outputs import check_dir_target, made_dirs
from smartscope.phases import MITOTIC
from smartscope.train.data import load_test
from smartscope.train.reports import (
    classification_scores,
    plot_confusion,
    plot_precision_recall,
    write_json,
)

log = logging.getLogger(__name__)

EVALUATION_JSON = "evaluation.json"
EVALUATION_PNG = "confusion_matrix.png"
PR_PNG = "precision_recall.png"


def mitotic_scores(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> dict | None:
    """Mitotic-vs-not precision and recall (the number a mitosis trigger depends on).

    None when the classes hold no mitotic phase or only mitotic phases.
    """
    mitotic = np.array([c in MITOTIC for c in classes])
    if not mitotic.any() or mitotic.all():
        return None
    t, p = mitotic[y_true], mitotic[y_pred]
    tp = int(np.sum(t & p))
    return {
        "mitotic_classes": [c for c in classes if c in MITOTIC],
        "precision": round(tp / int(p.sum()), 4) if p.sum() else None,
        "recall": round(tp / int(t.sum()), 4) if t.sum() else None,
        "n_mitotic": int(t.sum()), "n": int(len(t)),
    }


def evaluate_bundle(bundle: Path, test: Path, out: Path | None = None,
                    num_threads: int = 1, pixel_size_um: float | None = None,
                    marks: dict[str, float] | None = None, *, out_option: str = "out") -> dict:
    """Score a bundle on a test folder (one sub-folder per class, a subset of the card's classes).

    Parameters
    ----------
    bundle : bundle folder (``model.tflite`` + ``model_card.json``)
    test : labelled test folder
    out : folder for ``evaluation.json`` and ``confusion_matrix.png`` (nothing written if None)
    num_threads : LiteRT threads
    pixel_size_um : pixel size of the test crops when the folder has no ``dataset.json``
        (crops are resampled to the card's ``crop_um``)
    marks : class -> threshold to circle on the precision-recall plot (a protocol's)
    out_option : the name of ``out`` in messages (the command line passes its flag)

    Returns
    -------
    dict with accuracy, balanced accuracy, macro F1, per-class precision/recall/F1, the confusion
    matrix and, when the classes allow it, mitotic-vs-not precision and recall.

    Raises
    ------
    ModelBundleError
        If the bundle cannot be loaded.
    TrainingDataError
        If the test folder is missing, unreadable, or holds a class the model does not know.
    """
    if out is not None:
        check_dir_target(Path(out), option=out_option, inputs=[Path(bundle), Path(test)])
    clf = Classifier(bundle, num_threads=num_threads)
    classes = tuple(clf.classes)
    data = load_test(test, classes, crop_um=clf.card.input.crop_um, pixel_size_um=pixel_size_um)
    probs = np.concatenate([clf.predict(data.x[i:i + 256]) for i in range(0, len(data), 256)])
    pred = probs.argmax(1)
    scores = classification_scores(data.y, pred, classes)
    table = threshold_table(probs, data.y, classes, f"{Path(test).name}, int8")
    scores["thresholds"] = table.model_dump()
    scores["mitotic_vs_not"] = mitotic_scores(data.y, pred, classes)
    scores["bundle"] = Path(bundle).name
    scores["test_folder"] = Path(test).name
    scores["test_sha256"] = data.sha256
    if out is not None:
        with made_dirs(Path(out)) as folder:
            write_json(folder / EVALUATION_JSON, scores)
            plot_confusion(np.asarray(scores["confusion_matrix"]), classes,
                           folder / EVALUATION_PNG, f"{clf.card.name} on {Path(test).name} "
                           f"(n={scores['n']}, acc {scores['accuracy']})")
            plot_precision_recall(table, folder / PR_PNG, f"{clf.card.name} on "
                                  f"{Path(test).name}: precision-recall per class (labels: "
                                  "confidence threshold)", marks)
    log.info("evaluated %s on %s: accuracy %s", bundle, test, scores["accuracy"])
    return scores
