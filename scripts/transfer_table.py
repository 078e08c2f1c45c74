"""Transfer vs training from scratch with few labels, in both directions between two data sets.

For each direction (a base run trained on one set, labelled crops of the other), each number of
labels per class and each seed, this trains

* ``transfer``: ``smartscope transfer --base BASE --labels-per-class N`` (the recipe's settings);
* ``scratch``: ``smartscope train --supervised-only --balanced --labels-per-class N`` on the same
  crops (same seed, so the same subsample),

scores both int8 bundles on the other set's held-out test folder with LiteRT and writes a
markdown table (balanced accuracy and macro F1, mean +- sd over seeds) and ``transfer.json``.

Usage::

    python scripts/transfer_table.py --out RUNS \\
        --direction hela_to_cc BASE_HELA data/cellcognition_h2b/train data/cellcognition_h2b/test \\
        --direction cc_to_hela BASE_CC data/hela_phases/train data/hela_phases/test \\
        --labels 10 20 --seeds 0 1
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
log = logging.getLogger("transfer_table")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--direction", nargs=4, action="append", required=True,
                   metavar=("NAME", "BASE", "LABELLED", "TEST"))
    p.add_argument("--labels", type=int, nargs="+", default=[10, 20])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--steps-per-epoch", type=int, default=15)
    p.add_argument("--full", action="store_true", help="transfer recipe: retrain every layer")
    p.add_argument("--unfreeze", type=int, default=4)
    p.add_argument("--stage1-lr", type=float, default=6e-4,
                   help="head stage (or the single stage of --full)")
    p.add_argument("--stage2-lr", type=float, default=2e-4)
    p.add_argument("--max-gamma", type=float, default=1.6)
    p.add_argument("--arms", nargs="+", default=["transfer", "scratch"],
                   choices=["transfer", "scratch"])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sys.path.insert(0, str(REPO))
    from smartscope.train.tfsetup import setup_tensorflow

    setup_tensorflow(None)
    from dataclasses import replace

    from smartscope.train.evaluate import evaluate_bundle
    from smartscope.train.pipeline import TrainRequest, train_run
    from smartscope.train.sgan import SUPERVISED_ONLY, LoopConfig
    from smartscope.train.transfer import TransferRequest, transfer_run

    loop = LoopConfig(max_epochs=args.max_epochs, patience=args.patience, min_epochs=5,
                      steps_per_epoch=args.steps_per_epoch, monitor="balanced_accuracy",
                      max_gamma=args.max_gamma)
    results: list[dict] = []
    args.out.mkdir(parents=True, exist_ok=True)
    for name, base, labelled, test in args.direction:
        classes = None
        for n in args.labels:
            for seed in args.seeds:
                for arm in args.arms:
                    out = args.out / f"{name}_{n}_{seed}_{arm}"
                    t0 = time.perf_counter()
                    if arm == "transfer":
                        req = TransferRequest(
                            base=Path(base), labelled=Path(labelled), out=out, folds=0,
                            seed=seed, labels_per_class=n, full=args.full,
                            unfreeze=args.unfreeze, overwrite=True,
                            stage1=replace(loop, learning_rate=args.stage1_lr),
                            stage2=replace(loop, learning_rate=args.stage2_lr))
                        transfer_run(req)
                    else:
                        req2 = TrainRequest(
                            labelled=Path(labelled), out=out, seed=seed, labels_per_class=n,
                            method=SUPERVISED_ONLY, balanced=True, overwrite=True, loop=loop)
                        train_run(req2)
                    s = evaluate_bundle(out / "bundle", Path(test))
                    classes = s["classes"]
                    row = {"direction": name, "labels_per_class": n, "seed": seed, "arm": arm,
                           "balanced_accuracy": s["balanced_accuracy"],
                           "macro_f1": s["macro_f1"], "n_test": s["n"],
                           "seconds": round(time.perf_counter() - t0, 1)}
                    log.info("%s", row)
                    results.append(row)
                    (args.out / "transfer.json").write_text(json.dumps(
                        {"settings": vars(args) | {"out": str(args.out)}, "classes": classes,
                         "results": results}, indent=1, default=str))
    lines = ["| direction | labels/class | transfer bal. acc. | scratch bal. acc. | "
             "transfer macro F1 | scratch macro F1 |", "|---|---:|---:|---:|---:|---:|"]
    for name, *_ in args.direction:
        for n in args.labels:
            cells = []
            for key in ("balanced_accuracy", "macro_f1"):
                for arm in args.arms:
                    v = [r[key] for r in results if r["direction"] == name
                         and r["labels_per_class"] == n and r["arm"] == arm]
                    sd = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
                    cells.append(f"{np.mean(v):.3f} +- {sd:.3f}" if v else "-")
            lines.append(f"| {name} | {n} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    (args.out / "transfer_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
