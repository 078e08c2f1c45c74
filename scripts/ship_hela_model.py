"""Ship a HeLa model bundle: copy it from a training run, score it, complete its card.

Scores come from ``smartscope.train.evaluate.evaluate_bundle`` (LiteRT, int8, as on the
microscope), so ``smartscope evaluate <bundle> --test data/hela_phases/test`` reproduces the
card. Writes into ``--out``: ``model.tflite``, ``model_card.json``, ``confusion_matrix.png``,
``evaluation.json`` and ``test_predictions.png`` (every test crop with its true and predicted
class).

Usage::

    python scripts/ship_hela_model.py --run RUN_DIR --baseline BASELINE_RUN_DIR \
        --out models/hela_sgan_5class
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "hela_phases"
FEW = 30
"""Fewer training crops than this in a class: the card says it is too few to learn well."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="SGAN training run folder")
    p.add_argument("--baseline", type=Path, help="--supervised-only run on the same split")
    p.add_argument("--test", type=Path, default=DATA / "test")
    p.add_argument("--out", type=Path, default=REPO / "models" / "hela_sgan_5class")
    p.add_argument("--note", action="append", default=[], help="extra note for the card")
    return p.parse_args(argv)


def folder_counts(folder: Path) -> dict[str, int]:
    return {p.name: sum(1 for f in p.iterdir() if f.suffix == ".tif")
            for p in sorted(folder.iterdir()) if p.is_dir()}


def summary(scores: dict) -> dict:
    """The numbers the card keeps from an evaluation."""
    return {
        "n": scores["n"], "accuracy": scores["accuracy"],
        "balanced_accuracy": scores["balanced_accuracy"], "macro_f1": scores["macro_f1"],
        "per_class_f1": {c: v["f1"] for c, v in scores["per_class"].items()},
        "per_class": scores["per_class"],
        "mitotic_vs_interphase": scores.get("mitotic_vs_not"),
        "confusion_matrix": scores["confusion_matrix"],
        "test_sha256": scores["test_sha256"],
    }


def prediction_sheet(bundle: Path, test: Path, path: Path) -> None:
    """Contact sheet of every test crop: true and predicted class (red when wrong)."""
    import tifffile

    from smartscope.classify import Classifier
    from smartscope.commands.crops import contact_sheet
    from smartscope.vision.preprocess import prepare_crop_file_array

    clf = Classifier(bundle)
    files = sorted(test.glob("*/*.tif"))
    raw = [tifffile.imread(f) for f in files]
    x = np.stack([prepare_crop_file_array(r) for r in raw])[..., None]
    probs = clf.predict(x)
    pred = probs.argmax(1)
    captions, colours = [], []
    for f, k, pr in zip(files, pred, probs, strict=True):
        true, guess = f.parent.name, clf.classes[k]
        captions.append(f"T {true[:8]}\nP {guess[:8]} {pr[k]:.2f}")
        colours.append((120, 255, 120) if true == guess else (255, 90, 90))
    contact_sheet(raw, captions, path, columns=12, scale=2, caption_colours=colours)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from smartscope.classify.card import ModelCard
    from smartscope.train.evaluate import evaluate_bundle

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.tflite", "model_card.json"):
        shutil.copy2(args.run / "bundle" / name, out / name)
    scores = evaluate_bundle(out, args.test, out)
    baseline = None
    if args.baseline is not None:
        baseline = evaluate_bundle(args.baseline / "bundle", args.test)
    run = json.loads((args.run / "run.json").read_text())
    metrics = json.loads((args.run / "metrics.json").read_text())
    card = ModelCard.load(out)
    with open(DATA / "labels.csv", newline="") as fh:
        labels = list(csv.DictReader(fh))
    phases7 = {s: dict(Counter(r["phase"] for r in labels if r["split"] == s))
               for s in ("train", "test")}
    train_counts = folder_counts(DATA / "train")
    test_counts = folder_counts(args.test)
    used = run.get("data", {}).get("label_counts", run.get("label_counts"))
    training = dict(card.training)
    training.update({
        "data_set": "data/hela_phases (Cell Tracking Challenge Fluo-N2DL-HeLa seq 02, MitoCheck "
                    "origin; labelled by eye, see its README)",
        "label_counts_available": {"train": train_counts, "test": test_counts},
        "label_counts_used": used,
        "phase_labels_7": phases7,
        "split": "spatial: test = cells at x >= 800 px of the 1100 px field, all 20 frames; "
                 "cells grouped across frames so none is on both sides; unlabelled pool from "
                 "x < 770 px only",
        "seed": card.seed,
    })
    sc = dict(card.scores)
    sc["test_int8_litert"] = summary(scores)
    if baseline is not None:
        sc["baseline_supervised_only_test_int8"] = summary(baseline)
    notes = list(card.notes)
    few = [c for c, n in train_counts.items() if n < FEW]
    if few:
        listed = ", ".join(f"{c} ({train_counts[c]})" for c in few)
        notes.append(
            f"Too few training examples to learn well: {listed}"
            " labelled training crops, from fewer distinct cells (a dividing cell appears in 1-3 "
            "frames); their test scores rest on "
            f"{', '.join(str(test_counts.get(c, 0)) for c in few)} crops and are very uncertain.")
    notes.append("No apoptotic nucleus was seen in the 20 source frames, so the model has no "
                  "apoptosis class: four of the paper's five Mitocheck classes. Anaphase includes "
                  "telophase pairs; prophase crops are not in the five-class folders.")
    notes.append("Labels: one person, by eye, at 10x; the prometaphase/metaphase and late "
                  "anaphase/telophase boundaries are soft (see data/hela_phases/README.md).")
    notes.extend(args.note)
    card = card.model_copy(update={"training": training, "scores": sc, "notes": notes})
    card.save(out)
    prediction_sheet(out, args.test, out / "test_predictions.png")
    print(json.dumps({"test": summary(scores) | {"confusion_matrix": None},
                      "baseline": None if baseline is None else summary(baseline)["macro_f1"],
                      "epochs": metrics.get("epochs")}, indent=1, default=str)[:3000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
