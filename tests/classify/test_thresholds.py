"""Precision/recall at confidence thresholds, temperature calibration, the validate warning."""

from __future__ import annotations

import numpy as np
import pytest

from smartscope.classify.thresholds import (
    expected_calibration_error,
    fit_temperature,
    nll,
    softmax_t,
    threshold_table,
)


def test_table_counts_predictions_above_threshold():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    y = np.array([0, 0, 1, 1])
    t = threshold_table(probs, y, ("a", "b"), "toy", grid=(0.0, 0.65, 0.95))
    a = t.classes["a"]
    assert a.predicted == (3, 2, 0) and a.support == 2
    assert a.precision == (round(2 / 3, 4), 0.5, None)
    assert a.recall == (1.0, 0.5, 0.0)
    assert t.at("a", 0.7) == (0.5, 0.5, 0.65)
    assert t.at("b", 0.99)[2] == 0.95
    assert t.set == "toy (n=4)"


def test_temperature_fixes_overconfident_logits():
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    y = rng.integers(0, k, n)
    true_logits = rng.normal(0, 1, (n, k))
    true_logits[np.arange(n), y] += 1.5
    # labels drawn from softmax(true_logits): the model below is 3x overconfident
    p = softmax_t(true_logits, 1.0)
    y = np.array([rng.choice(k, p=row) for row in p])
    over = true_logits * 3.0
    t = fit_temperature(over, y)
    assert t == pytest.approx(3.0, rel=0.15)
    assert nll(softmax_t(over, t), y) < nll(softmax_t(over, 1.0), y)
    assert (expected_calibration_error(softmax_t(over, t), y)
            < expected_calibration_error(softmax_t(over, 1.0), y))


def test_validate_warns_on_low_precision_threshold():
    from types import SimpleNamespace

    from smartscope.commands.validate import threshold_warnings

    probs = np.array([[0.1, 0.9]] * 6 + [[0.05, 0.95]] * 4 + [[0.99, 0.01]] * 10)
    y = np.array([0] * 6 + [1] * 4 + [0] * 10)  # 0.9: mostly wrong; 0.95: right
    table = threshold_table(probs, y, ("interphase", "metaphase"), "validation")
    card = SimpleNamespace(thresholds=table)
    low = SimpleNamespace(triggers=[SimpleNamespace(phase=("metaphase",), min_confidence=0.85)])
    lines = threshold_warnings(low, card)
    assert len(lines) == 1
    assert "triggers.0.min_confidence" in lines[0] and "precision 0.40" in lines[0]
    assert "raise it to 0.925" in lines[0]
    high = SimpleNamespace(triggers=[SimpleNamespace(phase=("metaphase",), min_confidence=0.95)])
    assert threshold_warnings(high, card) == []
    assert threshold_warnings(low, SimpleNamespace(thresholds=None)) == []
