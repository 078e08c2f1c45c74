"""The paper's regime on one labelled set: SGAN vs supervised-only at N labels per class, k-fold.

All labelled crops of the given folders are pooled and dealt into k folds by cell
(``groups.csv``), stratified by class. For each fold and each N, N crops per class are drawn
(seeded) from the other folds, 20 % of them (by cell) kept for early stopping, and two models are
trained on exactly the same crops: ``sgan`` (with the unlabelled pool) and ``supervised-only``.
Each is scored (float Keras) on every crop of the held-out fold. Writes ``paper_regime.json`` and
a markdown table of mean +- sd over folds of balanced accuracy and macro F1.

Usage::

    python scripts/paper_regime.py --labelled data/cellcognition_h2b/train \\
        --labelled data/cellcognition_h2b/test --unlabelled data/cellcognition_h2b/unlabelled.npz \\
        --labels 10 20 40 0 --folds 5 --out RUNS
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("paper_regime")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labelled", type=Path, action="append", required=True)
    p.add_argument("--unlabelled", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labels", type=int, nargs="+", default=[10, 20, 40, 0],
                   help="labels per class; 0 = all")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=20)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--steps-per-epoch", type=int, default=20)
    p.add_argument("--crop-um", type=float, default=20.64)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sys.path.insert(0, str(REPO))
    from smartscope.train.tfsetup import setup_tensorflow

    setup_tensorflow(None)
    import keras

    from smartscope.train import data as d
    from smartscope.train import splits as sp
    from smartscope.train.models import classifier_head
    from smartscope.train.reports import classification_scores
    from smartscope.train.sgan import SGAN, SUPERVISED_ONLY, LoopConfig, predict_probs, run_loop

    geo = {"crop_um": args.crop_um}
    sets = [d.load_labelled(f, **geo) for f in args.labelled]
    data = d.merge_sets(sets, [f"{f.parent.name}/{f.name}" for f in args.labelled])
    pool = d.load_unlabelled(args.unlabelled, **geo).x
    loop = LoopConfig(max_epochs=args.max_epochs, patience=args.patience, min_epochs=5,
                      steps_per_epoch=args.steps_per_epoch, monitor="balanced_accuracy",
                      max_gamma=1.6)
    folds = sp.stratified_folds(data.y, args.folds, args.seed, data.classes, None, data.groups)
    rows: list[dict] = []
    args.out.mkdir(parents=True, exist_ok=True)
    for i, (tr, held) in enumerate(folds):
        part = data.subset(tr)
        for n in args.labels:
            use = sp.subsample_per_class(part, n, args.seed + i) if n else part
            a, b = sp.stratified_split(use.y, 0.2, args.seed + i, use.groups)
            train, val = use.subset(a), use.subset(b)
            p = sp.balanced_probabilities(train.y, sp.crop_sources(train))
            for method in (SGAN, SUPERVISED_ONLY):
                t0 = time.perf_counter()
                res = run_loop(train.x, train.y, val.x, val.y, len(data.classes),
                               x_unlabelled=pool, method=method, cfg=loop,
                               seed=args.seed + 100 * i, sample_p=p)
                pred = predict_probs(classifier_head(res.discriminator), data.x[held]).argmax(1)
                s = classification_scores(data.y[held], pred, data.classes)
                row = {"fold": i, "labels_per_class": n or "all", "method": method,
                       "n_train": len(train), "n_test": len(held),
                       "balanced_accuracy": s["balanced_accuracy"], "macro_f1": s["macro_f1"],
                       "accuracy": s["accuracy"], "epochs": len(res.history),
                       "seconds": round(time.perf_counter() - t0, 1)}
                log.info("%s", row)
                rows.append(row)
                keras.backend.clear_session()
                (args.out / "paper_regime.json").write_text(json.dumps(
                    {"settings": {k: str(v) for k, v in vars(args).items()},
                     "classes": list(data.classes), "results": rows}, indent=1))
    lines = ["| labels/class | method | balanced accuracy | macro F1 | folds |",
             "|---|---|---:|---:|---:|"]
    for n in args.labels:
        for method in (SGAN, SUPERVISED_ONLY):
            r = [x for x in rows if x["labels_per_class"] == (n or "all") and x["method"] == method]
            if not r:
                continue
            cells = []
            for key in ("balanced_accuracy", "macro_f1"):
                v = np.array([x[key] for x in r], float)
                sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
                cells.append(f"{v.mean():.3f} +- {sd:.3f}")
            lines.append(f"| {n or 'all'} | {method} | {cells[0]} | {cells[1]} | {len(r)} |")
    (args.out / "paper_regime.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
