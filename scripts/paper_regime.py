"""The paper's regime on one labelled set: SGAN vs supervised-only at N labels per class, k-fold.

All labelled crops of the given folders are pooled and dealt into k folds by cell
(``groups.csv``: a cell's crops share a fold), stratified by class. For each fold and each N,
N crops per class are drawn (seeded) from the other folds, 20 % of them (by cell) kept for early
stopping, and two models are trained on exactly the same crops with the same budget: ``sgan``
(with the unlabelled pool) and ``supervised-only``. Each is scored (float Keras) on every crop
of the held-out fold.

Resumable: every finished cell of the grid (fold, N, method) is written to
``OUT/paper_regime.json`` at once; run the same command again and finished cells are skipped (a
run with other settings in the same ``--out`` is refused). At the end, or with ``--report``
alone, it prints mean +- sd over folds of balanced accuracy and macro F1, the paired difference
SGAN - supervised per fold, writes ``OUT/paper_regime.md`` and a plot (``--plot``).

Usage::

    python scripts/paper_regime.py --labelled data/cellcognition_h2b/train \\
        --labelled data/cellcognition_h2b/test --unlabelled data/cellcognition_h2b/unlabelled.npz \\
        --labels 10 20 40 0 --folds 5 --out RUNS --plot docs/paper_regime.png
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
METHODS = ("sgan", "supervised-only")
RESULTS = "paper_regime.json"
# settings that change what a cell of the grid means; the others (out, plot, ...) do not
KEYED = ("labelled", "unlabelled", "folds", "seed", "max_epochs", "patience",
         "steps_per_epoch", "crop_um", "min_epochs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labelled", type=Path, action="append", required=True)
    p.add_argument("--unlabelled", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labels", type=int, nargs="+", default=[10, 20, 40, 0],
                   help="labels per class; 0 = all")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-folds", type=int, nargs="+", default=None,
                   help="train these folds only (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=20)
    p.add_argument("--min-epochs", type=int, default=5)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--steps-per-epoch", type=int, default=20)
    p.add_argument("--crop-um", type=float, default=20.64)
    p.add_argument("--plot", type=Path, default=None,
                   help="PNG of balanced accuracy and macro F1 vs labels per class")
    p.add_argument("--report", action="store_true",
                   help="only print the tables and plot from OUT/paper_regime.json")
    return p.parse_args(argv)


def keyed_settings(args: argparse.Namespace) -> dict[str, str]:
    """The settings a stored result must share with this run to count as the same grid."""
    return {k: str(getattr(args, k)) for k in KEYED}


def load_results(path: Path, settings: dict[str, str]) -> list[dict]:
    """Rows already in ``path`` (none if absent); SystemExit if they were run differently."""
    if not path.exists():
        return []
    stored = json.loads(path.read_text())
    old = stored.get("settings", {})
    diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
    if diff:
        raise SystemExit(f"error: {path} holds a grid run with other settings "
                         f"({', '.join(f'{k}: {a} vs {b}' for k, (a, b) in diff.items())}); "
                         "give another --out or the same settings")
    return list(stored.get("results", []))


def label_key(n: int | str) -> str:
    return "all" if n in (0, "0", "all") else str(n)


def summary(rows: list[dict], labels: list[int]) -> list[dict]:
    """Per N and method: mean +- sd over folds; per N: paired SGAN - supervised differences."""
    out = []
    for n in labels:
        key = label_key(n)
        by = {m: {r["fold"]: r for r in rows if label_key(r["labels_per_class"]) == key
                  and r["method"] == m} for m in METHODS}
        entry: dict = {"labels_per_class": key}
        for m in METHODS:
            for score in ("balanced_accuracy", "macro_f1"):
                v = np.array([r[score] for r in by[m].values()], float)
                entry[f"{m}/{score}"] = (float(v.mean()) if v.size else None,
                                         float(v.std(ddof=1)) if v.size > 1 else 0.0)
            entry[f"{m}/folds"] = len(by[m])
            entry[f"{m}/n_train"] = sorted({r["n_train"] for r in by[m].values()})
        both = sorted(set(by[METHODS[0]]) & set(by[METHODS[1]]))
        for score in ("balanced_accuracy", "macro_f1"):
            d = np.array([by["sgan"][f][score] - by["supervised-only"][f][score] for f in both])
            entry[f"diff/{score}"] = (float(d.mean()) if d.size else None,
                                      float(d.std(ddof=1)) if d.size > 1 else 0.0,
                                      int(np.sum(d > 0)), int(d.size))
        out.append(entry)
    return out


def table(summ: list[dict]) -> str:
    def ms(v: tuple) -> str:
        return "-" if v[0] is None else f"{v[0]:.3f} +- {v[1]:.3f}"

    def diff(v: tuple) -> str:
        return "-" if v[0] is None else f"{v[0]:+.3f} +- {v[1]:.3f} ({v[2]} of {v[3]})"

    lines = ["| labels/class (train crops) | SGAN bal. acc. | supervised bal. acc. | "
             "SGAN macro F1 | supervised macro F1 | SGAN - supervised bal. acc. (folds SGAN "
             "better) | SGAN - supervised macro F1 | folds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for e in summ:
        n_train = e["sgan/n_train"] or e["supervised-only/n_train"]
        span = "-" if not n_train else (f"{n_train[0]}" if len(n_train) == 1
                                        else f"{n_train[0]}-{n_train[-1]}")
        folds = min(e["sgan/folds"], e["supervised-only/folds"])
        lines.append(f"| {e['labels_per_class']} ({span}) | {ms(e['sgan/balanced_accuracy'])} | "
                     f"{ms(e['supervised-only/balanced_accuracy'])} | {ms(e['sgan/macro_f1'])} | "
                     f"{ms(e['supervised-only/macro_f1'])} | {diff(e['diff/balanced_accuracy'])} "
                     f"| {diff(e['diff/macro_f1'])} | {folds} |")
    return "\n".join(lines) + "\n"


def plot(summ: list[dict], path: Path, title: str, n_classes: int = 0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    x = np.arange(len(summ))
    for ax, score, name in zip(axes, ("balanced_accuracy", "macro_f1"),
                               ("balanced accuracy", "macro F1"), strict=True):
        for j, (m, colour) in enumerate(zip(METHODS, ("tab:red", "tab:blue"), strict=True)):
            mean = np.array([np.nan if e[f"{m}/{score}"][0] is None else e[f"{m}/{score}"][0]
                             for e in summ])
            sd = np.array([e[f"{m}/{score}"][1] for e in summ])
            folds = [e[f"{m}/folds"] for e in summ]
            ax.errorbar(x + (j - 0.5) * 0.12, mean, yerr=sd, marker="o", capsize=4,
                        color=colour, label=m)
            for xi, mi, f in zip(x, mean, folds, strict=True):
                if np.isfinite(mi):
                    ax.annotate(f"n={f}", (xi + (j - 0.5) * 0.12, mi), fontsize=7,
                                textcoords="offset points", xytext=(6, -3 - 8 * j))
        if score == "balanced_accuracy" and n_classes:
            ax.axhline(1 / n_classes, color="grey", ls=":", lw=1, label="chance")
        ax.set_xticks(x, [e["labels_per_class"] for e in summ])
        ax.set_xlabel("labels per class")
        ax.set_ylabel(f"{name} on the held-out fold")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(args: argparse.Namespace, rows: list[dict], classes: list[str]) -> None:
    summ = summary(rows, args.labels)
    text = table(summ)
    (args.out / "paper_regime.md").write_text(text)
    print(text)
    if args.plot is not None:
        sets = " + ".join(f"{f.parent.name}/{f.name}" for f in args.labelled)
        plot(summ, args.plot, f"{sets} ({len(classes)} classes), {args.folds}-fold by cell, "
             f"mean +- sd over folds; budget {args.max_epochs} epochs x {args.steps_per_epoch} "
             f"steps, patience {args.patience}", len(classes))
        print(f"plot: {args.plot}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = args.out / RESULTS
    settings = keyed_settings(args)
    rows = load_results(path, settings)
    if args.report:
        stored = json.loads(path.read_text()) if path.exists() else {}
        report(args, rows, stored.get("classes", []))
        return 0
    sys.path.insert(0, str(REPO))
    from smartscope.train.tfsetup import setup_tensorflow

    setup_tensorflow(None)
    import keras

    from smartscope.train import data as d
    from smartscope.train import splits as sp
    from smartscope.train.models import classifier_head
    from smartscope.train.reports import classification_scores
    from smartscope.train.sgan import LoopConfig, predict_probs, run_loop

    geo = {"crop_um": args.crop_um}
    sets = [d.load_labelled(f, **geo) for f in args.labelled]
    data = d.merge_sets(sets, [f"{f.parent.name}/{f.name}" for f in args.labelled])
    pool = d.load_unlabelled(args.unlabelled, **geo).x
    loop = LoopConfig(max_epochs=args.max_epochs, patience=args.patience,
                      min_epochs=args.min_epochs, steps_per_epoch=args.steps_per_epoch,
                      monitor="balanced_accuracy", max_gamma=1.6)
    folds = sp.stratified_folds(data.y, args.folds, args.seed, data.classes, None, data.groups)
    done = {(r["fold"], label_key(r["labels_per_class"]), r["method"]) for r in rows}
    if done:
        log.info("resuming: %d finished cells in %s", len(done), path)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, (tr, held) in enumerate(folds):
        if args.only_folds is not None and i not in args.only_folds:
            continue
        part = data.subset(tr)
        for n in args.labels:
            if all((i, label_key(n), m) in done for m in METHODS):
                continue
            use = sp.subsample_per_class(part, n, args.seed + i) if n else part
            a, b = sp.stratified_split(use.y, 0.2, args.seed + i, use.groups)
            train, val = use.subset(a), use.subset(b)
            p = sp.balanced_probabilities(train.y, sp.crop_sources(train))
            for method in METHODS:
                if (i, label_key(n), method) in done:
                    continue
                t0 = time.perf_counter()
                res = run_loop(train.x, train.y, val.x, val.y, len(data.classes),
                               x_unlabelled=pool, method=method, cfg=loop,  # type: ignore[arg-type]
                               seed=args.seed + 100 * i, sample_p=p)
                pred = predict_probs(classifier_head(res.discriminator), data.x[held]).argmax(1)
                s = classification_scores(data.y[held], pred, data.classes)
                row = {"fold": i, "labels_per_class": label_key(n), "method": method,
                       "n_train": len(train), "n_validation": len(val), "n_test": len(held),
                       "balanced_accuracy": s["balanced_accuracy"], "macro_f1": s["macro_f1"],
                       "accuracy": s["accuracy"], "epochs": len(res.history),
                       "best_epoch": res.best_epoch, "batch_size": res.batch_size,
                       "seconds": round(time.perf_counter() - t0, 1)}
                log.info("%s", row)
                rows.append(row)
                keras.backend.clear_session()
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"settings": settings, "classes": list(data.classes),
                                           "results": rows}, indent=1))
                tmp.replace(path)
    report(args, rows, list(data.classes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
