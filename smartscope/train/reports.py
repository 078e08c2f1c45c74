"""Scores and figures: classification metrics, confusion matrix, training curves, sample grids.

Numpy and matplotlib only (no TensorFlow), so ``evaluate`` can use them on a LiteRT bundle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smartscope.classify.thresholds import ThresholdTable
from smartscope.outputs import atomic_file


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix (true class rows, predicted class columns), int."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def classification_scores(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]
) -> dict:
    """Accuracy, balanced accuracy, macro F1, per-class precision/recall/F1/support, confusion.

    Classes absent from ``y_true`` are left out of balanced accuracy and macro F1 (their
    per-class recall is reported as None).
    """
    k = len(classes)
    cm = confusion(y_true, y_pred, k)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(float)
    per_class = {}
    f1s: list[float] = []
    recalls: list[float] = []
    for i, name in enumerate(classes):
        precision = tp[i] / predicted[i] if predicted[i] else 0.0
        recall = tp[i] / support[i] if support[i] else None
        f1 = (2 * precision * recall / (precision + recall)
              if recall is not None and precision + recall > 0 else 0.0)
        if recall is not None:  # the class is in y_true (support > 0)
            f1s.append(f1)
            recalls.append(recall)
        per_class[name] = {"precision": round(float(precision), 4),
                           "recall": None if recall is None else round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(support[i])}
    n = int(cm.sum())
    return {
        "n": n,
        "accuracy": round(float(tp.sum() / n), 4) if n else None,
        "balanced_accuracy": round(float(np.mean(recalls)), 4) if recalls else None,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else None,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "classes": list(classes),
    }


def mean_sd(values: Sequence[float]) -> dict:
    """{"mean", "sd", "values"} of fold scores (sample standard deviation)."""
    arr = np.asarray([v for v in values if v is not None], float)
    if arr.size == 0:
        return {"mean": None, "sd": None, "values": []}
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": round(float(arr.mean()), 4), "sd": round(sd, 4),
            "values": [round(float(v), 4) for v in arr]}


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as JSON through a temporary file moved into place when complete."""
    path = Path(path)
    text = json.dumps(data, indent=2, default=_jsonable) + "\n"
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return path


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, plt.figure(*args, **kwargs)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    """Save a confusion matrix PNG (counts, and colour by row-normalised recall)."""
    cm = np.asarray(cm)
    plt, fig = _figure(figsize=(1.1 * len(classes) + 2.5, 1.0 * len(classes) + 2.0))
    ax = fig.add_subplot(111)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    _savefig(fig, path, 110)
    plt.close(fig)
    return Path(path)


def plot_curves(history: list[dict], path: Path, title: str = "") -> Path:
    """Save losses and accuracies per epoch (training_curves.png)."""
    plt, fig = _figure(figsize=(10, 4))
    epochs = [r["epoch"] for r in history]
    ax1, ax2 = fig.add_subplot(121), fig.add_subplot(122)
    for key, label in (("loss_c", "supervised (train)"), ("val_loss", "supervised (val)"),
                       ("loss_d", "discriminator real/fake"), ("loss_g", "generator")):
        vals = [r.get(key) for r in history]
        if any(v is not None for v in vals):
            ax1.plot(epochs, [np.nan if v is None else v for v in vals], label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=8)
    ax2.plot(epochs, [r["train_accuracy"] for r in history], label="train (augmented)")
    ax2.plot(epochs, [r["val_accuracy"] for r in history], label="validation")
    if all("val_balanced_accuracy" in r for r in history):
        ax2.plot(epochs, [r["val_balanced_accuracy"] for r in history],
                 label="validation, balanced")
    best = [r for r in history if r["epoch"] == history[-1]["best_epoch"]]
    if best:
        ax2.axvline(best[0]["epoch"], color="grey", ls="--", lw=1, label="best checkpoint")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _savefig(fig, path, 110)
    plt.close(fig)
    return Path(path)


def plot_grid(images: np.ndarray, path: Path, title: str = "", cols: int = 8,
              labels: Sequence[str] | None = None) -> Path:
    """Save a grid of crops in [-1, 1] (for example generated samples)."""
    images = np.asarray(images)[..., 0] if np.ndim(images) == 4 else np.asarray(images)
    rows = max(1, int(np.ceil(len(images) / cols)))
    plt, fig = _figure(figsize=(cols * 1.2, rows * 1.2 + 0.4))
    for i, img in enumerate(images):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(img, cmap="gray", vmin=-1, vmax=1)
        ax.axis("off")
        if labels is not None:
            ax.set_title(labels[i], fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    _savefig(fig, path, 100)
    plt.close(fig)
    return Path(path)


def _savefig(fig, path: Path, dpi: int) -> None:  # noqa: ANN001 - a matplotlib Figure
    """Save a figure through a temporary file moved into place when complete."""
    with atomic_file(Path(path)) as tmp:
        fig.savefig(tmp, dpi=dpi)


def plot_precision_recall(table: ThresholdTable, path: Path, title: str = "",
                          marks: dict[str, float] | None = None) -> Path:
    """One precision-recall panel per class from a ``ThresholdTable``, thresholds annotated.

    ``marks`` (class -> threshold) circles the point a protocol uses.
    """
    names = list(table.classes)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    plt, fig = _figure(figsize=(4.2 * cols, 3.8 * rows))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax, name in zip(axes.ravel(), names, strict=False):
        curve = table.classes[name]
        pts = [(r, p, t) for p, r, t in zip(curve.precision, curve.recall, table.grid,
                                            strict=True) if p is not None and r is not None]
        if pts:
            rs, ps, _ = zip(*pts, strict=True)
            ax.plot(rs, ps, "o-", ms=3)
            for ri, pi, ti in pts[:: max(1, len(pts) // 6)]:
                ax.annotate(f"{ti:g}", (ri, pi), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        if marks and name in marks:
            mp, mr, _ = table.at(name, marks[name])
            if mp is not None and mr is not None:
                ax.plot([mr], [mp], "o", ms=10, mfc="none", mec="red")
                ax.annotate(f"protocol {marks[name]:g}", (mr, mp), color="red", fontsize=8,
                            xytext=(-60, -14), textcoords="offset points")
        ax.axhline(0.8, color="grey", lw=0.5, ls="--")
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
               title=f"{name} (n={curve.support})")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.suptitle(title or table.set, fontsize=10)
    fig.tight_layout()
    _savefig(fig, path, 110)
    plt.close(fig)
    return Path(path)
