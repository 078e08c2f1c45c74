"""Per-class precision and recall at confidence thresholds, and temperature calibration (numpy).

A trigger fires on a nucleus whose most probable class is its phase with a probability of at
least ``min_confidence``. For class k and threshold t, on labelled crops:

* precision(k, t) = #(predicted k, p_k >= t, true k) / #(predicted k, p_k >= t)
* recall(k, t) = #(predicted k, p_k >= t, true k) / #(true k)

The model card stores these on the validation crops (``ThresholdTable``); ``smartscope
evaluate`` computes them on any labelled folder and ``smartscope validate`` reads a trigger's
figures off the card.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from smartscope.frozen import FrozenModel

THRESHOLD_GRID: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9,
                                     0.925, 0.95, 0.97, 0.98, 0.99)
"""Thresholds at which cards and ``smartscope evaluate`` report precision and recall."""


class ClassCurve(FrozenModel):
    """Precision and recall of one class at each threshold of the grid."""

    precision: tuple[float | None, ...] = Field(description="None where nothing is predicted")
    recall: tuple[float | None, ...] = Field(description="None where the class has no crops")
    predicted: tuple[int, ...] = Field(description="crops predicted as the class at threshold")
    support: int = Field(description="crops of the class in the set")


class ThresholdTable(FrozenModel):
    """Per-class precision/recall at a grid of confidence thresholds, on a named set."""

    set: str = Field(description="which crops, e.g. 'validation (n=245)'")
    grid: tuple[float, ...]
    classes: dict[str, ClassCurve]

    def at(self, phase: str, threshold: float) -> tuple[float | None, float | None, float]:
        """(precision, recall, grid threshold used) at the largest grid value <= ``threshold``.

        Raises
        ------
        KeyError
            If ``phase`` is not in the table.
        """
        curve = self.classes[phase]
        i = max(j for j, g in enumerate(self.grid) if g <= threshold + 1e-9)
        return curve.precision[i], curve.recall[i], self.grid[i]


def threshold_table(probs: np.ndarray, y: np.ndarray, classes: Sequence[str], set_name: str,
                    grid: Sequence[float] = THRESHOLD_GRID) -> ThresholdTable:
    """Precision and recall of every class at every threshold of ``grid``.

    Parameters
    ----------
    probs : (N, K) class probabilities
    y : (N,) true class indices
    classes : the K class names
    set_name : description of the crops (stored in the table)
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y)
    pred = probs.argmax(1)
    conf = probs.max(1)
    curves = {}
    for k, name in enumerate(classes):
        truth = y == k
        prec, rec, npred = [], [], []
        for t in grid:
            fire = (pred == k) & (conf >= t)
            tp = int(np.sum(fire & truth))
            n = int(fire.sum())
            prec.append(round(tp / n, 4) if n else None)
            rec.append(round(tp / int(truth.sum()), 4) if truth.sum() else None)
            npred.append(n)
        curves[name] = ClassCurve(precision=tuple(prec), recall=tuple(rec),
                                  predicted=tuple(npred), support=int(truth.sum()))
    return ThresholdTable(set=f"{set_name} (n={len(y)})", grid=tuple(float(g) for g in grid),
                          classes=curves)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    p = np.clip(np.asarray(probs, np.float64)[np.arange(len(y)), y], 1e-12, 1.0)
    return float(-np.mean(np.log(p)))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by count."""
    probs = np.asarray(probs, np.float64)
    conf, hit = probs.max(1), probs.argmax(1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.sum() * abs(hit[m].mean() - conf[m].mean())
    return float(total / max(1, len(y)))


def softmax_t(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of logits / temperature."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray, lo: float = 0.05, hi: float = 20.0
                    ) -> float:
    """The temperature T that minimises the NLL of softmax(logits / T) (golden-section on log T).

    ``logits`` may be log-probabilities (softmax is shift-invariant).
    """
    a, b = np.log(lo), np.log(hi)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)

    def f(v: float) -> float:
        return nll(softmax_t(logits, float(np.exp(v))), y)

    fc, fd = f(c), f(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return float(np.exp((a + b) / 2))
