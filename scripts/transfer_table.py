"""Transfer vs training from scratch with few labels, in both directions between two data sets.

For each direction (a base run trained on one set; labelled crops of the other), each number N
of labels per class and each seed, N crops per class of the other set's LABELLED folder are
drawn (seeded, as ``--labels-per-class N --seed S`` does), split 80/20 by cell for early
stopping (as ``smartscope transfer`` and ``smartscope train`` do), and these arms are trained on
exactly those crops:

* ``scratch``: ``smartscope train --supervised-only --balanced --max-gamma 1.6``;
* one arm per ``--recipe``: ``smartscope transfer`` from BASE with that recipe.

Every model (float Keras) is scored on two sets:

* **validation**: every crop of LABELLED whose cell (``groups.csv``) was not drawn; recipes are
  compared and chosen on this score only;
* **test**: the other set's held-out TEST folder, reported for the chosen recipe.

Resumable: each finished (direction, N, seed, arm) is written to ``OUT/transfer.json`` at once;
the same command again skips finished cells. ``--report`` alone prints the tables.

Recipes: ``NAME=key:value,...`` with keys ``unfreeze`` (blocks fine-tuned in stage 2), ``full``
(0/1: one stage, every layer), ``lr1``, ``lr2`` (stage learning rates), ``head``
(``matched``/``fresh``), ``gamma`` (augmentation). Keys not given take the ``smartscope
transfer`` defaults (head matched, unfreeze 4, lr1 6e-4, lr2 2e-4, gamma 1.6).

Usage::

    python scripts/transfer_table.py --out RUNS \\
        --direction hela_to_cc BASE_HELA data/cellcognition_h2b/train data/cellcognition_h2b/test \\
        --direction cc_to_hela BASE_CC data/hela_phases/train data/hela_phases/test \\
        --labels 10 20 --seeds 0 1 --recipe fresh=head:fresh --recipe matched=head:matched
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
KEYED = ("max_epochs", "patience", "steps_per_epoch", "min_epochs")
RECIPE_KEYS = {"unfreeze": int, "full": lambda v: bool(int(v)), "lr1": float, "lr2": float,
               "head": str, "gamma": float}


def parse_recipe(text: str) -> tuple[str, dict]:
    name, _, body = text.partition("=")
    out: dict = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition(":")
        if key not in RECIPE_KEYS:
            raise SystemExit(f"error: --recipe {text}: unknown key {key!r}; give one of "
                             f"{', '.join(RECIPE_KEYS)}")
        out[key] = RECIPE_KEYS[key](value)
    return name, out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--direction", nargs=4, action="append", default=[],
                   metavar=("NAME", "BASE", "LABELLED", "TEST"))
    p.add_argument("--labels", type=int, nargs="+", default=[10, 20])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--recipe", action="append", default=[], help="NAME=key:value,...")
    p.add_argument("--max-epochs", type=int, default=20, help="per stage")
    p.add_argument("--min-epochs", type=int, default=5)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--steps-per-epoch", type=int, default=15)
    p.add_argument("--no-scratch", action="store_true")
    p.add_argument("--report", action="store_true", help="only print the tables")
    args = p.parse_args(argv)
    args.recipes = dict(parse_recipe(r) for r in (args.recipe or ["default="]))
    return args


def mean_sd(v: list[float]) -> str:
    if not v:
        return "-"
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return f"{np.mean(v):.3f} +- {sd:.3f}"


def arm_table(rows: list[dict], arms: list[str], cells: list[tuple], split: str) -> list[str]:
    """Markdown rows: balanced accuracy on ``split`` of every arm per (direction, labels)."""
    lines = ["| direction | labels/class | " + " | ".join(arms) + " |",
             "|---|---:|" + "---:|" * len(arms)]
    for name, n in cells:
        vals = [mean_sd([r[split]["balanced_accuracy"] for r in rows
                         if (r["direction"], r["labels_per_class"], r["arm"]) == (name, n, a)])
                for a in arms]
        lines.append(f"| {name} | {n} | " + " | ".join(vals) + " |")
    return lines


def report(rows: list[dict], out: Path) -> str:
    """Validation table of every arm, the recipe chosen on validation, and its test table."""
    arms = sorted({r["arm"] for r in rows}, key=lambda a: (a != "scratch", a))
    cells = sorted({(r["direction"], r["labels_per_class"]) for r in rows})
    lines = ["Validation (crops of the labelled set whose cells were not drawn), balanced "
             "accuracy, mean +- sd over seeds:", "", *arm_table(rows, arms, cells, "validation")]
    recipes = [a for a in arms if a != "scratch"]
    # chosen on validation: highest mean over the cells where it ran (every cell counts once)
    def score(a: str) -> float:
        per = [np.mean([r["validation"]["balanced_accuracy"] for r in rows
                        if (r["direction"], r["labels_per_class"], r["arm"]) == (*c, a)])
               for c in cells if any((r["direction"], r["labels_per_class"], r["arm"])
                                     == (*c, a) for r in rows)]
        return float(np.mean(per)) if len(per) == len(cells) else -1.0
    # only recipes run as often as the most-run one compete (same seeds, same cells)
    runs_of = {a: sum(r["arm"] == a for r in rows) for a in recipes}
    full = [a for a in recipes if runs_of[a] == max(runs_of.values())]
    best = max(full, key=score) if full else None
    lines += ["", "Mean validation balanced accuracy over the cells: " + ", ".join(
        f"{a} {score(a):.3f} ({runs_of.get(a, 0)} runs)" for a in recipes),
        f"Chosen on validation among the recipes with the most runs: {best}", ""]
    if best is not None:
        lines += ["Test (the other set's held-out test folder), balanced accuracy / macro F1, "
                  "mean +- sd over seeds; wins = seeds where transfer beats scratch:", "",
                  "| direction | labels/class | seeds | scratch bal. acc. | transfer bal. acc. | "
                  "scratch macro F1 | transfer macro F1 | transfer better (bal. acc.) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, n in cells:
            by = {a: {r["seed"]: r["test"] for r in rows
                      if (r["direction"], r["labels_per_class"], r["arm"]) == (name, n, a)}
                  for a in ("scratch", best)}
            seeds = sorted(set(by["scratch"]) & set(by[best]))
            got = [[by[a][s][k] for s in seeds] for k in ("balanced_accuracy", "macro_f1")
                   for a in ("scratch", best)]
            wins = sum(by[best][s]["balanced_accuracy"] > by["scratch"][s]["balanced_accuracy"]
                       for s in seeds)
            lines.append(f"| {name} | {n} | {len(seeds)} | " + " | ".join(map(mean_sd, got))
                         + f" | {wins} of {len(seeds)} |")
    lines += ["", "Test balanced accuracy of every arm (for the record; not used to choose):", "",
              *arm_table(rows, arms, cells, "test")]
    text = "\n".join(lines) + "\n"
    (out / "transfer_table.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = args.out / "transfer.json"
    settings = {k: getattr(args, k) for k in KEYED}
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored and stored.get("settings") != settings:
        raise SystemExit(f"error: {path} holds a run with other settings "
                         f"({stored.get('settings')}); give another --out or the same settings")
    rows: list[dict] = stored.get("results", [])
    recipes = {**stored.get("recipes", {}), **args.recipes}
    for r in rows:
        if r["arm"] in args.recipes and stored.get("recipes", {}).get(r["arm"]) not in (
                None, args.recipes[r["arm"]]):
            raise SystemExit(f"error: recipe {r['arm']} in {path} was {stored['recipes']}; "
                             "give it another name")
    if args.report:
        print(report(rows, args.out))
        return 0
    sys.path.insert(0, str(REPO))
    from smartscope.train.tfsetup import setup_tensorflow

    setup_tensorflow(None)
    from dataclasses import replace

    import keras

    from smartscope.train import data as d
    from smartscope.train import runs
    from smartscope.train import splits as sp
    from smartscope.train.models import classifier_head
    from smartscope.train.reports import classification_scores
    from smartscope.train.sgan import SUPERVISED_ONLY, LoopConfig, predict_probs, run_loop
    from smartscope.train.transfer import TransferRequest, fit_transfer

    loop = LoopConfig(max_epochs=args.max_epochs, patience=args.patience,
                      min_epochs=args.min_epochs, steps_per_epoch=args.steps_per_epoch,
                      monitor="balanced_accuracy", max_gamma=1.6)
    done = {(r["direction"], r["labels_per_class"], r["seed"], r["arm"]) for r in rows}
    args.out.mkdir(parents=True, exist_ok=True)
    arms = ([] if args.no_scratch else ["scratch"]) + list(args.recipes)
    for name, base, labelled_dir, test_dir in args.direction:
        base_dir = runs.find_base_run(Path(base))
        info = runs.load_base_info(base_dir)
        geo = {"crop_um": float(info.get("crop_um", 20.64))}
        labelled = d.load_labelled(Path(labelled_dir), **geo)
        test = d.load_test(Path(test_dir), labelled.classes, **geo)
        for n in args.labels:
            for seed in args.seeds:
                todo = [a for a in arms if (name, n, seed, a) not in done]
                if not todo:
                    continue
                few = sp.subsample_per_class(labelled, n, seed)
                drawn = set(few.groups)
                rest = labelled.subset([i for i, g in enumerate(labelled.groups)
                                        if g not in drawn])
                tr, va = sp.stratified_split(few.y, 0.2, seed, few.groups)
                train, val = few.subset(tr), few.subset(va)
                k = len(labelled.classes)
                for arm in todo:
                    t0 = time.perf_counter()
                    if arm == "scratch":
                        model = run_loop(train.x, train.y, val.x, val.y, k, method=SUPERVISED_ONLY,
                                         cfg=loop, seed=seed, sample_p=sp.balanced_probabilities(
                                             train.y, sp.crop_sources(train))).discriminator
                    else:
                        rc = args.recipes[arm]
                        stage = replace(loop, max_gamma=rc.get("gamma", 1.6))
                        req = TransferRequest(
                            base=Path(base), labelled=Path(labelled_dir), out=args.out,
                            full=rc.get("full", False), unfreeze=rc.get("unfreeze", 4),
                            head=rc.get("head", TransferRequest.head),
                            stage1=replace(stage, learning_rate=rc.get("lr1", 6e-4)),
                            stage2=replace(stage, learning_rate=rc.get("lr2", 2e-4)))
                        model = fit_transfer(req, runs.load_checkpoint(base_dir), train, val,
                                             seed, base_classes=tuple(info.get("classes") or ())
                                             )[0]
                    head = classifier_head(model)
                    row = {"direction": name, "labels_per_class": n, "seed": seed, "arm": arm,
                           "n_train": len(train), "n_validation_stop": len(val),
                           "validation_n": len(rest), "test_n": len(test),
                           "seconds": round(time.perf_counter() - t0, 1)}
                    for key, s in (("validation", rest), ("test", test)):
                        sc = classification_scores(s.y, predict_probs(head, s.x).argmax(1),
                                                   labelled.classes)
                        row[key] = {m: sc[m] for m in ("balanced_accuracy", "macro_f1",
                                                       "accuracy")}
                    log.info("%s", row)
                    rows.append(row)
                    keras.backend.clear_session()
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps({"settings": settings, "recipes": recipes,
                                               "results": rows}, indent=1))
                    tmp.replace(path)
    print(report(rows, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
