"""How reproducible are the HeLa phase labels? A blind second pass over the test split, scored.

Three steps, run in this order::

    # 1. blind review sheets: every non-interphase test crop + a seeded sample of interphase ones,
    #    shuffled, under anonymous ids, each nucleus at t-1, t, t+1 (no labels, no model outputs)
    python scripts/label_agreement.py sheets --frames PATH/Fluo_Hela_02_img.tif --out SCRATCH
    # 2. label SCRATCH/labels_by_id.csv by eye, then join it to the crops through the key
    python scripts/label_agreement.py record --sheets SCRATCH
    # 3. agreement (per class, kappa, confusion) and the shipped model's int8 scores
    python scripts/label_agreement.py score

``sheets`` writes the key (anonymous id -> crop position, no label) under ``SCRATCH/key/``; the
reviewer should not open it before the pass is recorded. ``record`` writes
``data/hela_phases/second_pass.csv`` (frame, label_y, label_x, review_id, second_label, note).
``score`` writes ``docs/label_agreement.json`` and ``docs/label_agreement.png``. The benchmark
(``labels.csv``, the train/test folders) is only read.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "hela_phases"
BUNDLE = REPO / "models" / "hela_h2b_5class"
SECOND_PASS = DATA / "second_pass.csv"
PHASES = ("interphase", "prophase", "prometaphase", "metaphase", "anaphase", "telophase",
          "apoptosis")
UNCERTAIN = "uncertain"
ANSWERS = (*PHASES, UNCERTAIN)
TO_FIVE = {"telophase": "anaphase"}
"""Five-class task: telophase is counted as anaphase; prophase stays prophase (not a class)."""
CATEGORIES = ("interphase", "prophase", "prometaphase", "metaphase", "anaphase", "apoptosis",
              UNCERTAIN)
WINDOW_PX = 64
PER_SHEET = 10
BY_ID = "labels_by_id.csv"

log = logging.getLogger("label_agreement")


def five(label: str) -> str:
    """A phase (or ``uncertain``) as a five-class-task category (telophase -> anaphase)."""
    return TO_FIVE.get(label, label)


def confusion_table(first: Sequence[str], second: Sequence[str],
                    categories: Sequence[str]) -> np.ndarray:
    """Counts, first pass in rows, second pass in columns, over ``categories``."""
    idx = {c: i for i, c in enumerate(categories)}
    cm = np.zeros((len(categories), len(categories)), dtype=np.int64)
    for a, b in zip(first, second, strict=True):
        cm[idx[a], idx[b]] += 1
    return cm


def cohen_kappa(cm: np.ndarray) -> float:
    """Cohen's kappa of a square agreement table: (p_o - p_e) / (1 - p_e)."""
    cm = np.asarray(cm, dtype=float)
    n = cm.sum()
    po = np.trace(cm) / n
    pe = float(np.sum(cm.sum(axis=0) * cm.sum(axis=1))) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else 1.0


def agreement(first: Sequence[str], second: Sequence[str],
              categories: Sequence[str] = CATEGORIES) -> dict:
    """Overall and per-class agreement of two passes, Cohen's kappa and the confusion table.

    Per class: ``n_first`` crops the first pass gave that class, ``same`` of them the second
    pass gave it too (``share`` = same / n_first), and the specific (positive) agreement
    2 * same / (n_first + n_second), symmetric in the two passes.
    """
    cm = confusion_table(first, second, categories)
    per_class = {}
    for i, c in enumerate(categories):
        n1, n2, same = int(cm[i].sum()), int(cm[:, i].sum()), int(cm[i, i])
        if n1 or n2:
            per_class[c] = {"n_first": n1, "n_second": n2, "same": same,
                            "share": round(same / n1, 4) if n1 else None,
                            "specific_agreement": round(2 * same / (n1 + n2), 4)}
    return {"n": int(cm.sum()), "agree": int(np.trace(cm)),
            "overall": round(float(np.trace(cm) / cm.sum()), 4),
            "kappa": round(cohen_kappa(cm), 4), "per_class": per_class,
            "categories": list(categories), "confusion_first_rows": cm.tolist()}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def key_of(row: dict) -> tuple[int, float, float]:
    return int(row["frame"]), round(float(row["label_y"]), 1), round(float(row["label_x"]), 1)


def select(index: list[dict], n_interphase: int, seed: int) -> list[dict]:
    """Every non-interphase test crop plus ``n_interphase`` interphase ones, shuffled (seeded)."""
    rng = np.random.default_rng(seed)
    test = [r for r in index if r["split"] == "test"]
    mitotic = [r for r in test if r["phase"] != "interphase"]
    inter = [r for r in test if r["phase"] == "interphase"]
    pick = rng.choice(len(inter), size=min(n_interphase, len(inter)), replace=False)
    chosen = mitotic + [inter[i] for i in sorted(pick)]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def triplet(frames: np.ndarray, t: int, y: float, x: float, size: int = WINDOW_PX) -> np.ndarray:
    """The window around (y, x) in frames t-1, t, t+1, stretched by the centre window's 1-99.7 %
    percentiles, as floats in [0, 1] (shape (3, size, size); NaN where the frame does not exist).
    """
    _, h, w = frames.shape
    y0, x0 = int(round(y)) - size // 2, int(round(x)) - size // 2
    out = np.full((3, size, size), np.nan)
    for k, tt in enumerate((t - 1, t, t + 1)):
        if not 0 <= tt < frames.shape[0]:
            continue
        ys, xs = slice(max(y0, 0), min(y0 + size, h)), slice(max(x0, 0), min(x0 + size, w))
        win = np.full((size, size), np.nan)
        win[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = frames[tt, ys, xs]
        out[k] = win
    lo, hi = np.nanpercentile(out[1], [1.0, 99.7])
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0, 1)


def sheet_figure(items: Sequence[tuple[str, np.ndarray]], cols: int = 2):  # noqa: ANN201
    """One review sheet (a matplotlib Figure): per item its anonymous id and its t-1 / t / t+1
    windows, nothing else. Takes no label argument on purpose: a sheet cannot show what it is
    not given.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, 3 * cols, figsize=(3 * cols * 2.1, rows * 2.3), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    c = WINDOW_PX / 2 - 0.5
    for n, (rid, trip) in enumerate(items):
        r, c0 = divmod(n, cols)
        for k, when in enumerate(("t-1", "t", "t+1")):
            ax = axes[r, 3 * c0 + k]
            img = np.ma.masked_invalid(trip[k])
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):  # ticks pointing at the centre
                ax.plot([c + dx * 30, c + dx * 26], [c + dy * 30, c + dy * 26], color="yellow",
                        lw=1.2)
            ax.set_title(f"{rid}  {when}" if k == 1 else when, fontsize=10,
                         fontweight="bold" if k == 1 else "normal")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.01, wspace=0.04, hspace=0.15)
    return fig


def render_sheet(items: Sequence[tuple[str, np.ndarray]], path: Path) -> Path:
    """Write :func:`sheet_figure` as a PNG (no text chunks but matplotlib's own)."""
    import matplotlib.pyplot as plt

    fig = sheet_figure(items)
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return path


def make_sheets(args: argparse.Namespace) -> int:
    from smartscope.vision.io import read_frames

    if not args.frames.is_file():
        log.error("%s: source frames not found; give Fluo_Hela_02_img.tif (Cell Tracking "
                  "Challenge Fluo-N2DL-HeLa 02, see data/hela_phases/README.md)", args.frames)
        return 2
    frames = read_frames(args.frames).astype(np.float64)
    chosen = select(read_csv(args.index), args.interphase, args.seed)
    out: Path = args.out
    (out / "key").mkdir(parents=True, exist_ok=True)
    ids = [f"r{n + 1:03d}" for n in range(len(chosen))]
    with open(out / "key" / "key.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["review_id", "frame", "label_y", "label_x", "y", "x"])
        for rid, r in zip(ids, chosen, strict=True):
            w.writerow([rid, r["frame"], r["label_y"], r["label_x"], r["y"], r["x"]])
    with open(out / BY_ID, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["review_id", "second_label", "note"])
        w.writerows([[rid, "", ""] for rid in ids])
    for s in range(0, len(chosen), PER_SHEET):
        items = [(ids[i], triplet(frames, int(chosen[i]["frame"]), float(chosen[i]["y"]),
                                  float(chosen[i]["x"])))
                 for i in range(s, min(s + PER_SHEET, len(chosen)))]
        render_sheet(items, out / f"sheet_{s // PER_SHEET + 1:02d}.png")
    log.info("%d crops on %d sheets in %s (key in %s, do not open it before 'record')",
             len(chosen), -(-len(chosen) // PER_SHEET), out, out / "key")
    return 0


def record(args: argparse.Namespace) -> int:
    key = {r["review_id"]: r for r in read_csv(args.sheets / "key" / "key.csv")}
    given = read_csv(args.sheets / BY_ID)
    rows = []
    for r in given:
        label = r["second_label"].strip().lower()
        if label not in ANSWERS:
            log.error("%s: review_id %s: second_label %r is not one of %s; fix it",
                      args.sheets / BY_ID, r["review_id"], label, ", ".join(ANSWERS))
            return 2
        k = key.get(r["review_id"])
        if k is None:
            log.error("%s: review_id %r is not in the key; keep the ids the sheets show",
                      args.sheets / BY_ID, r["review_id"])
            return 2
        rows.append([k["frame"], k["label_y"], k["label_x"], r["review_id"], label,
                     r.get("note", "").strip()])
    if len(rows) != len(key):
        log.error("%s: %d of %d ids labelled; label them all", args.sheets / BY_ID, len(rows),
                  len(key))
        return 2
    rows.sort(key=lambda r: (int(r[0]), float(r[1]), float(r[2])))
    with open(args.to, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "label_y", "label_x", "review_id", "second_label", "note"])
        w.writerows(rows)
    log.info("wrote %s (%d crops)", args.to, len(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("sheets", help="write blind review sheets and the key")
    s.add_argument("--frames", type=Path,
                   default=REPO.parent / "shared" / "data" / "hela" / "Fluo_Hela_02_img.tif")
    s.add_argument("--out", type=Path, required=True, help="scratch folder (not committed)")
    s.add_argument("--index", type=Path, default=DATA / "index.csv", help="crops and labels")
    s.add_argument("--interphase", type=int, default=40, help="interphase crops to sample")
    s.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("record", help="join the labels by id to the crops (second_pass.csv)")
    r.add_argument("--sheets", type=Path, required=True, help="the folder 'sheets' wrote")
    r.add_argument("--to", type=Path, default=SECOND_PASS, help="second-pass file to write")
    c = sub.add_parser("score", help="agreement and the shipped model's int8 scores")
    c.add_argument("--bundle", type=Path, default=BUNDLE)
    c.add_argument("--out", type=Path, default=REPO / "docs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.step == "sheets":
        return make_sheets(args)
    if args.step == "record":
        return record(args)
    from label_agreement_score import score

    return score(args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
