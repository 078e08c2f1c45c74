"""Scores computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from smartscope.train.evaluate import mitotic_scores
from smartscope.train.reports import classification_scores, mean_sd


def test_classification_scores():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 0, 2])
    s = classification_scores(y, p, ("a", "b", "c"))
    assert s["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert s["per_class"]["a"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["per_class"]["a"]["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["per_class"]["b"]["f1"] == pytest.approx(0.5, abs=1e-4)
    assert s["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3, abs=1e-4)
    assert s["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_absent_class_is_left_out_of_macro_scores():
    s = classification_scores(np.array([0, 0]), np.array([0, 1]), ("a", "b"))
    assert s["per_class"]["b"]["recall"] is None
    assert s["balanced_accuracy"] == pytest.approx(0.5)


def test_mean_sd():
    assert mean_sd([0.8, 0.9, 1.0]) == {"mean": 0.9, "sd": 0.1, "values": [0.8, 0.9, 1.0]}


def test_mitotic_scores():
    classes = ("interphase", "metaphase", "anaphase")
    m = mitotic_scores(np.array([0, 1, 2, 0]), np.array([1, 1, 0, 0]), classes)
    assert m["precision"] == 0.5 and m["recall"] == 0.5
    assert mitotic_scores(np.array([0]), np.array([0]), ("a", "b")) is None
