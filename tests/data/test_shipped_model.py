"""The shipped bundle: its card says what the issue asks, and ``evaluate`` reproduces it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from smartscope.cli import main

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "models" / "hela_h2b_5class"
TESTS = {"hela": REPO / "data" / "hela_phases" / "test",
         "cellcognition": REPO / "data" / "cellcognition_h2b" / "test"}
FIVE = ["interphase", "prometaphase", "metaphase", "anaphase", "apoptosis"]


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((BUNDLE / "model_card.json").read_text())


def test_bundle_files_exist():
    for name in ("model.tflite", "model_card.json", "discriminator.keras",
                 "confusion_hela.png", "confusion_cellcognition.png",
                 "precision_recall_hela.png", "precision_recall_cellcognition.png",
                 "test_predictions_hela.png", "test_predictions_cellcognition.png"):
        assert (BUNDLE / name).is_file(), name


def test_card_states_counts_split_seed_scores_and_limits(card):
    assert card["classes"] == FIVE
    assert card["quantisation"]["input_dtype"] == "int8"
    assert card["input"]["crop_um"] == pytest.approx(20.64)
    assert card["seed"] == 0
    training = card["training"]
    assert set(training["label_counts"]["total"]) == set(FIVE)
    assert "hela_phases/train" in training["labelled_folder"]
    assert "cellcognition_h2b/train" in training["labelled_folder"]
    for key in TESTS:
        test = card["scores"][f"test_{key}_int8_litert"]
        for field in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_f1",
                      "mitotic_vs_interphase"):
            assert test[field] is not None, (key, field)
    # calibrated, with a threshold table for every class
    assert card["calibration"]["temperature"] > 0
    assert set(card["thresholds"]["classes"]) == set(FIVE)
    notes = " ".join(card["notes"])
    assert "apoptosis" in notes.lower()
    for t in card["scores"]["targets"]:
        assert t["met"] or f"Target missed: {t['target']}" in notes


def test_shipped_model_is_the_default_training_size(card):
    """What `smartscope train` builds by default is what the speed figures were measured on."""
    from smartscope.train.models import DEFAULT_CROP_UM, DEFAULT_SIZE, SIZES

    size = card["training"]["model_size"]
    assert size["name"] == DEFAULT_SIZE
    assert tuple(size["disc_filters"]) == SIZES[DEFAULT_SIZE].disc_filters
    assert card["input"]["crop_um"] == pytest.approx(DEFAULT_CROP_UM)


@pytest.mark.slow
@pytest.mark.parametrize("key", list(TESTS))
def test_evaluate_reproduces_the_card(card, key):
    from smartscope.train.evaluate import evaluate_bundle

    got = evaluate_bundle(BUNDLE, TESTS[key])
    want = card["scores"][f"test_{key}_int8_litert"]
    assert got["n"] == want["n"]
    assert got["test_sha256"] == want["test_sha256"]
    for field in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert got[field] == pytest.approx(want[field], abs=1e-4), field
    for cls, f1 in want["per_class_f1"].items():
        assert got["per_class"][cls]["f1"] == pytest.approx(f1, abs=1e-4), cls
    m = want["mitotic_vs_interphase"]
    assert got["mitotic_vs_not"]["precision"] == pytest.approx(m["precision"], abs=1e-4)
    assert got["mitotic_vs_not"]["recall"] == pytest.approx(m["recall"], abs=1e-4)


@pytest.mark.slow
def test_evaluate_command_prints_the_card_accuracy(card, capsys, tmp_path):
    assert main(["evaluate", str(BUNDLE), "--test", str(TESTS["hela"]), "--out",
                 str(tmp_path), "--protocol",
                 str(REPO / "acquisitions" / "mitosis_zoom.yaml")]) == 0
    out = capsys.readouterr().out
    acc = card["scores"]["test_hela_int8_litert"]["accuracy"]
    assert f"accuracy {acc}" in out
    assert "precision / recall at confidence" in out and "protocol threshold metaphase" in out
    # the HeLa test holds no apoptosis and the model calls none: no precision to print (was 0.000)
    assert re.search(r"^apoptosis +- +- +- +0$", out, re.M)
    assert (tmp_path / "precision_recall.png").is_file()


def test_example_protocols_pass_the_precision_check():
    """The example protocols use thresholds read off the card: validate gives no warning."""
    from smartscope.classify.card import ModelCard
    from smartscope.commands.validate import threshold_warnings
    from smartscope.protocol import load_protocol

    card = ModelCard.load(BUNDLE)
    for path in sorted((REPO / "acquisitions").glob("*.yaml")):
        proto = load_protocol(path)
        if Path(proto.model.bundle).resolve() == BUNDLE.resolve():
            assert threshold_warnings(proto, card) == [], path.name


@pytest.mark.slow
def test_transfer_from_the_shipped_bundle(tmp_path):
    """`smartscope transfer --base models/<bundle>` fine-tunes the shipped float checkpoint."""
    from smartscope.classify import ModelCard

    out = tmp_path / "t"
    code = main(["transfer", "--base", str(BUNDLE), "--labelled",
                 str(REPO / "data" / "cellcognition_h2b" / "seven" / "train"),
                 "--classes", "interphase,prophase,metaphase", "--labels-per-class", "6",
                 "--out", str(out), "--folds", "0", "--max-epochs", "1", "--patience", "1",
                 "--quiet"])
    assert code == 0
    card = ModelCard.load(out / "bundle")
    assert card.classes == ("interphase", "prophase", "metaphase")
    assert card.input.crop_um == pytest.approx(20.64)  # the base's field, not the default
    assert card.training["base_run"] == BUNDLE.name
    assert card.training["head"] == "matched"  # interphase, metaphase start from the base's
