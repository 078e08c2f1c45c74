"""Nucleus detection precision and recall on the real HeLa frames against their instance masks.

    python benchmarks/detection_quality.py [--data DIR] [--margin-px 20] [--json out.json]
                                           [--gallery unmatched.png]

The masks (``Fluo_Hela_02_ERR_SEG.tif``, Cell Tracking Challenge) are error-prone: they merge or
split some nuclei and leave out many dim nuclei and most nuclei near the frame border. So two
figures are printed: against every mask instance, and ignoring objects whose centre lies within
``--margin-px`` of the border (where the masks are mostly empty). ``--gallery`` writes crops of
the unmatched detections and missed instances, to judge them by eye.

Matching: a detection matches the instance under its centre pixel; each instance matches at most
one detection (a second detection in the same instance counts as a false positive: a split).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hela"
PIXEL_SIZE_UM = 0.645


def match_frame(nuclei, labels: np.ndarray, margin_px: int) -> dict:
    """Counts for one frame; ``margin_px`` > 0 ignores objects centred near the border."""
    from scipy import ndimage as ndi

    h, w = labels.shape
    ids = np.unique(labels)
    ids = ids[ids > 0]
    cy, cx = (np.array(ndi.center_of_mass(labels > 0, labels, ids)).reshape(-1, 2).T
              if ids.size else (np.zeros(0), np.zeros(0)))

    def inner(y, x):
        return (y >= margin_px) & (y < h - margin_px) & (x >= margin_px) & (x < w - margin_px)

    gt_counted = set(ids[inner(cy, cx)].tolist())
    yi = np.clip(np.round(nuclei.y).astype(int), 0, h - 1)
    xi = np.clip(np.round(nuclei.x).astype(int), 0, w - 1)
    hit = labels[yi, xi]
    det_counted = inner(nuclei.y, nuclei.x)
    matched: set[int] = set()
    tp = fp = splits = 0
    fp_at, fn_at = [], []
    for k, (label, counted) in enumerate(zip(hit.tolist(), det_counted.tolist(), strict=True)):
        if label > 0 and label not in matched:
            matched.add(label)
            tp += int(counted or label in gt_counted)
        elif counted:
            fp += 1
            splits += int(label > 0)
            fp_at.append((float(nuclei.y[k]), float(nuclei.x[k])))
    missed = sorted(gt_counted - matched)
    index = {int(i): n for n, i in enumerate(ids)}
    fn_at = [(float(cy[index[i]]), float(cx[index[i]])) for i in missed]
    return {"tp": tp, "fp": fp, "fn": len(missed), "splits": splits, "n_detected": len(nuclei),
            "n_masks": int(ids.size), "fp_at": fp_at, "fn_at": fn_at}


def summarise(rows: list[dict]) -> dict:
    tp = sum(r["tp"] for r in rows)
    fp = sum(r["fp"] for r in rows)
    fn = sum(r["fn"] for r in rows)
    return {"tp": tp, "fp": fp, "fn": fn,
            "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1)}


def gallery(frames, results, path: Path, per_kind: int = 48) -> None:
    """Contact sheet: unmatched detections (top) and missed mask instances (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    half = 24
    picks = {"unmatched detection": [], "missed mask": []}
    for t, r in enumerate(results):
        picks["unmatched detection"] += [(t, *p) for p in r["fp_at"]]
        picks["missed mask"] += [(t, *p) for p in r["fn_at"]]
    cols = 12
    fig, axes = plt.subplots(2 * (per_kind // cols), cols, figsize=(cols * 1.1, 8 * 1.2))
    for a in axes.ravel():
        a.set_axis_off()
    for k, (kind, items) in enumerate(picks.items()):
        rng = np.random.default_rng(0)
        sel = rng.permutation(len(items))[:per_kind]
        for n, i in enumerate(sel):
            t, y, x = items[i]
            img = frames[t].astype(np.float32)
            y0, x0 = int(max(0, y - half)), int(max(0, x - half))
            crop = np.log(np.maximum(img[y0:y0 + 2 * half, x0:x0 + 2 * half] - 32990, 1))
            ax = axes.ravel()[k * per_kind + n]
            ax.imshow(crop, cmap="gray", vmin=np.log(20), vmax=np.log(2500))
            ax.plot([x - x0], [y - y0], "+", color="yellow" if k == 0 else "red", ms=6)
            ax.set_title(f"{kind.split()[0]} t{t}", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with Fluo_Hela_02_img.tif and Fluo_Hela_02_ERR_SEG.tif")
    parser.add_argument("--margin-px", type=int, default=20)
    parser.add_argument("--diameter-um", type=float, default=18.0)
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--gallery", type=Path, help="PNG of unmatched and missed objects")
    args = parser.parse_args(argv)

    img_path = args.data / "Fluo_Hela_02_img.tif"
    mask_path = args.data / "Fluo_Hela_02_ERR_SEG.tif"
    if not (img_path.is_file() and mask_path.is_file()):
        print(f"HeLa frames not found in {args.data}; pass --data", file=sys.stderr)
        return 2
    import tifffile

    from smartscope.vision import find_nuclei

    frames = tifffile.imread(img_path)
    masks = tifffile.imread(mask_path)
    all_rows, inner_rows, times = [], [], []
    for t in range(len(frames)):
        t0 = time.perf_counter()
        nuclei = find_nuclei(frames[t], PIXEL_SIZE_UM, args.diameter_um)
        times.append(time.perf_counter() - t0)
        all_rows.append(match_frame(nuclei, masks[t], 0))
        inner_rows.append(match_frame(nuclei, masks[t], args.margin_px))

    print(f"{'frame':>5} {'detected':>8} {'masks':>6} {'TP':>5} {'FP':>4} {'FN':>4} "
          f"{'splits':>6}   (margin {args.margin_px} px)")
    for t, r in enumerate(inner_rows):
        print(f"{t:>5} {r['n_detected']:>8} {r['n_masks']:>6} {r['tp']:>5} {r['fp']:>4} "
              f"{r['fn']:>4} {r['splits']:>6}")
    every, inner = summarise(all_rows), summarise(inner_rows)
    print(f"all objects:            precision {every['precision']:.3f}  "
          f"recall {every['recall']:.3f}  (TP {every['tp']}, FP {every['fp']}, FN {every['fn']})")
    print(f"border margin {args.margin_px:>2} px:    precision {inner['precision']:.3f}  "
          f"recall {inner['recall']:.3f}  (TP {inner['tp']}, FP {inner['fp']}, FN {inner['fn']})")
    print(f"detection time per {frames.shape[1]}x{frames.shape[2]} frame: "
          f"median {1e3 * np.median(times):.1f} ms")
    if args.json:
        args.json.write_text(json.dumps({
            "data": img_path.name, "frames": len(frames), "pixel_size_um": PIXEL_SIZE_UM,
            "diameter_um": args.diameter_um, "margin_px": args.margin_px,
            "all": every, "inner": inner, "detect_ms_median": 1e3 * float(np.median(times)),
            "per_frame": [{k: v for k, v in r.items() if not k.endswith("_at")}
                          for r in inner_rows],
        }, indent=2))
    if args.gallery:
        gallery(frames, inner_rows, args.gallery)
        print(f"gallery -> {args.gallery}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
