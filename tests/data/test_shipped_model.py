"""The shipped HeLa bundle: its card says what the issue asks, and ``evaluate`` reproduces it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartscope.cli import main

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "models" / "hela_sgan_5class"
TEST = REPO / "data" / "hela_phases" / "test"


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((BUNDLE / "model_card.json").read_text())


def test_bundle_files_exist():
    for name in ("model.tflite", "model_card.json", "confusion_matrix.png",
                 "test_predictions.png"):
        assert (BUNDLE / name).is_file(), name


def test_card_states_counts_split_seed_scores_and_limits(card):
    assert card["classes"] == ["interphase", "prometaphase", "metaphase", "anaphase"]
    assert card["quantisation"]["input_dtype"] == "int8"
    assert card["seed"] == 0
    training = card["training"]
    assert set(training["label_counts_available"]["train"]) == set(card["classes"])
    assert "spatial" in training["split"]
    test = card["scores"]["test_int8_litert"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_f1",
                "mitotic_vs_interphase"):
        assert test[key] is not None, key
    base = card["scores"]["baseline_supervised_only_test_int8"]
    assert base["accuracy"] is not None
    notes = " ".join(card["notes"])
    assert "Too few training examples" in notes and "apoptosis" in notes


def test_shipped_model_is_the_default_training_size(card):
    """What `smartscope train` builds by default is what the speed figures were measured on."""
    from smartscope.train.models import DEFAULT_SIZE, SIZES

    size = card["training"]["model_size"]
    assert size["name"] == DEFAULT_SIZE
    assert tuple(size["disc_filters"]) == SIZES[DEFAULT_SIZE].disc_filters


@pytest.mark.slow
def test_evaluate_reproduces_the_card(card):
    from smartscope.train.evaluate import evaluate_bundle

    got = evaluate_bundle(BUNDLE, TEST)
    want = card["scores"]["test_int8_litert"]
    assert got["n"] == want["n"]
    assert got["test_sha256"] == want["test_sha256"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert got[key] == pytest.approx(want[key], abs=1e-4), key
    for cls, f1 in want["per_class_f1"].items():
        assert got["per_class"][cls]["f1"] == pytest.approx(f1, abs=1e-4), cls
    m = want["mitotic_vs_interphase"]
    assert got["mitotic_vs_not"]["precision"] == pytest.approx(m["precision"], abs=1e-4)
    assert got["mitotic_vs_not"]["recall"] == pytest.approx(m["recall"], abs=1e-4)


@pytest.mark.slow
def test_evaluate_command_prints_the_card_accuracy(card, capsys):
    assert main(["evaluate", str(BUNDLE), "--test", str(TEST)]) == 0
    out = capsys.readouterr().out
    acc = card["scores"]["test_int8_litert"]["accuracy"]
    assert f"accuracy {acc}" in out
