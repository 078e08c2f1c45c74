"""Score trained models on their validation split, overall and per labelled folder (float Keras).

Recipes are chosen on validation, never on the test sets. This rebuilds the train/validation
split that ``smartscope train`` made (same folders, field, seed and fraction; the validation
hash is checked against the card or run), loads each model's Keras checkpoint in safe mode and
prints balanced accuracy, macro F1 and per-class recall, for all validation crops and for each
labelled folder on its own.

Usage::

    python scripts/validation_by_set.py --labelled data/hela_phases/train \
        --labelled data/cellcognition_h2b/train models/hela_h2b_5class runs/aug
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path, help="run folders or bundles with a checkpoint")
    p.add_argument("--labelled", type=Path, action="append", required=True,
                   help="the labelled folders the models were trained on, in the same order")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--json", type=Path, help="also write the scores here")
    p.add_argument("--other-split", action="store_true",
                   help="score a model whose validation split differs (the folders were "
                        "re-split since it was trained): warn instead of stopping")
    return p.parse_args(argv)


def training_section(folder: Path) -> dict:
    run = folder / "run.json"
    if run.is_file():
        return json.loads(run.read_text())["training"]
    return json.loads((folder / "model_card.json").read_text())["training"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras

    from smartscope.train import data as d
    from smartscope.train import splits as sp
    from smartscope.train.pipeline import folder_label
    from smartscope.train.reports import classification_scores
    from smartscope.train.sgan import predict_probs

    cache: dict[float, tuple] = {}
    results = {}
    for folder in args.models:
        training = training_section(folder)
        crop_um = float(training["crop_um"])
        if crop_um not in cache:
            sets = [d.load_labelled(f, crop_um=crop_um) for f in args.labelled]
            data = d.merge_sets(sets, [folder_label(f) for f in args.labelled])
            _, va = sp.stratified_split(data.y, args.val_fraction, args.seed, data.groups)
            cache[crop_um] = (data.subset(va), np.asarray(sp.crop_sources(data.subset(va))))
        val, src = cache[crop_um]
        want = training["data_sha256"]["validation"]
        if val.sha256 != want:
            print(f"{folder}: validation split differs from the one it was trained with "
                  f"(hash {val.sha256[:12]} vs {want[:12]}); check --labelled, --seed"
                  + ("; scored anyway (--other-split): some of these crops may have been "
                     "trained on" if args.other_split else ""), file=sys.stderr)
            if not args.other_split:
                return 2
        model = keras.saving.load_model(folder / "discriminator.keras", safe_mode=True,
                                        compile=False)
        from smartscope.train.models import classifier_head

        pred = predict_probs(classifier_head(model), val.x).argmax(1)
        row = {"all": classification_scores(val.y, pred, val.classes)}
        for s in sorted(set(src)):
            m = src == s
            row[s] = classification_scores(val.y[m], pred[m], val.classes)
        results[str(folder)] = row
        parts = []
        for name, sc in row.items():
            rec = "/".join("-" if v["recall"] is None else f"{v['recall']:.2f}"
                           for v in sc["per_class"].values())
            parts.append(f"{name} (n={sc['n']}): bal {sc['balanced_accuracy']:.3f} "
                         f"F1 {sc['macro_f1']:.3f} recall {rec}")
        print(f"{folder}\n  " + "\n  ".join(parts))
        keras.backend.clear_session()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
