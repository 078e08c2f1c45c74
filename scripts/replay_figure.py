"""Figure of a replayed run: what the protocol did on a recorded movie, against its labels.

Panels: (a) the screening frame of the first trigger with the labelled target-phase nuclei, the
model's target-phase calls at or above the trigger's confidence, and the cell the trigger acted
on; (b) the first follow-up image of that trigger (at another objective: the recording
interpolated); (c) per screening frame, labelled target-phase nuclei in view, the model's calls,
and the triggers, with the run's trigger precision and recall (from its ``run.json``).

Usage::

    python scripts/replay_figure.py RUN_DIR --movie MOVIE.tif --labels labels.csv \
        --out docs/replay_hela.png [--threshold 0.7]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="run folder of a replay (smartscope run --replay)")
    p.add_argument("--movie", type=Path, required=True, help="the replayed TIFF stack")
    p.add_argument("--labels", type=Path, required=True, help="labels CSV (frame, y, x, phase)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--threshold", type=float, default=None,
                   help="trigger min_confidence (default: the run's first trigger's)")
    return p.parse_args(argv)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _stretch(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, (1, 99.7))
    return np.clip((img.astype(np.float32) - lo) / max(hi - lo, 1.0), 0, 1)


def _first_follow_image(run: Path) -> tuple[np.ndarray, dict] | None:
    from ndstorage import Dataset

    from smartscope.acquire.repair import find_datasets

    found = find_datasets(run)
    # a data set of its own per follow-up part (its first is the first follow-up); runs of an
    # earlier version kept every image in one data set under a "mode" axis
    follow = [p for p in found if p.relative_to(run).parts[0].startswith("followup_")]
    if not found:
        return None
    ds = Dataset(str(follow[0] if follow else found[-1]))
    try:
        items = [(a, ds.read_metadata(**a)) for a in ds.get_image_coordinates_list()
                 if follow or a.get("mode") == "follow"]
        if not items:
            return None
        axes, md = min(items, key=lambda am: am[1]["ElapsedTime-ms"])
        return np.asarray(ds.read_image(**axes)), md
    finally:
        ds.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile

    run = json.loads((args.run / "run.json").read_text())
    replay = run["scope_info"]["replay"]
    if args.threshold is None:
        args.threshold = float(run["protocol"]["triggers"][0]["min_confidence"])
    ps, (h, w) = replay["pixel_size_um"], replay["frame_shape_px"]
    triggers = run["protocol"]["triggers"]
    target = set(triggers[0]["phase"]) if triggers else {"metaphase"}
    movie = tifffile.imread(args.movie)
    labels = [r for r in _rows(args.labels) if r["phase"] in target]
    shown = {int(r["image"]) - 1: r for r in _rows(args.run / "replay_frames.csv")}
    cells = _rows(args.run / "cells.csv")
    decisions = [json.loads(x) for x in (args.run / "decisions.jsonl").read_text().splitlines()]
    trig = [d for d in decisions if d.get("event") == "trigger"]
    ec = (run["summary"].get("event_capture") or {}).get("all", {})

    def to_px(x_um: float, y_um: float) -> tuple[float, float]:
        return (x_um / ps + (w - 1) / 2, y_um / ps + (h - 1) / 2)

    fig = plt.figure(figsize=(15, 9.5))
    grid = fig.add_gridspec(2, 2, height_ratios=(2.2, 1), width_ratios=(1.6, 1))
    ax_a, ax_b, ax_c = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), \
        fig.add_subplot(grid[1, :])
    first = trig[0] if trig else None
    k = int(shown[first["frame"]]["movie_frame"]) if first else 0
    ax_a.imshow(_stretch(movie[k]), cmap="gray")
    lab_k = [r for r in labels if int(r["frame"]) == k]
    ax_a.scatter([float(r["x"]) for r in lab_k], [float(r["y"]) for r in lab_k], s=260,
                 facecolors="none", edgecolors="lime", linewidths=1.5,
                 label=f"labelled {'/'.join(sorted(target))} ({len(lab_k)})")
    fi = first["frame"] if first else 0
    calls = [c for c in cells if int(c["frame"]) == fi and c["phase"] in target
             and float(c["confidence"]) >= args.threshold]
    ax_a.scatter([float(c["x"]) for c in calls], [float(c["y"]) for c in calls], marker="x",
                 s=70, c="red", label=f"model calls >= {args.threshold:g} ({len(calls)})")
    if first is not None and first.get("target"):
        tx, ty = to_px(first["target"]["x_um"], first["target"]["y_um"])
        ax_a.add_patch(plt.Rectangle((tx - 35, ty - 35), 70, 70, fill=False, ec="yellow", lw=2))
        ax_a.plot([], [], "s", mfc="none", mec="yellow", label="cell the trigger centred on")
    ax_a.set_title(f"(a) screening image {fi} = recorded frame {k}"
                   + (f", trigger '{first['trigger']}'" if first else ", no trigger"))
    ax_a.legend(loc="lower left", fontsize=8, framealpha=0.8)
    ax_a.set_axis_off()

    follow = _first_follow_image(args.run)
    if follow is not None:
        img, md = follow
        ax_b.imshow(_stretch(img), cmap="gray")
        px = float(md.get("PixelSize_um", ps))
        obj = min(replay["magnification"],
                  key=lambda o: abs(replay["magnification"][o] - ps / px))
        ax_b.set_title(f"(b) first follow-up image ({obj}, {px:g} um/px):\nthe "
                       f"{replay['recorded_objective']} recording interpolated {ps / px:.3g}x, "
                       "no real resolution")
    else:
        ax_b.set_title("(b) no follow-up")
    ax_b.set_axis_off()

    screens = sorted({int(c["frame"]) for c in cells if c["mode"] == "screen"})
    xs, truth_n, call_n = [], [], []
    for i in screens:
        kk = int(shown[i]["movie_frame"]) if i in shown else None
        if kk is None:
            continue
        xs.append(float(shown[i]["sample_time_s"]) / 3600)
        truth_n.append(sum(1 for r in labels if int(r["frame"]) == kk))
        call_n.append(sum(1 for c in cells if int(c["frame"]) == i and c["phase"] in target
                          and float(c["confidence"]) >= args.threshold))
    ax_c.step(xs, truth_n, where="post", color="green", label="labelled in view")
    ax_c.step(xs, call_n, where="post", color="red", label=f"model calls >= {args.threshold:g}")
    for d in trig:
        t = float(shown[d["frame"]]["sample_time_s"]) / 3600
        ax_c.axvline(t, color="orange", lw=2, alpha=0.8)
    ax_c.plot([], [], color="orange", lw=2, label="trigger")
    ax_c.set_xlabel("sample time (h)")
    ax_c.set_ylabel(f"{'/'.join(sorted(target))} nuclei")
    prec, rec = ec.get("precision"), ec.get("recall")
    ax_c.set_title(f"(c) screening frames: trigger precision {prec} ({ec.get('right')}/"
                   f"{ec.get('triggers')}), recall {rec} ({ec.get('caught')}/"
                   f"{ec.get('episodes')} labelled episodes)")
    ax_c.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=75)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
