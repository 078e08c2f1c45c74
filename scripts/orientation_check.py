"""How a model's probability for one phase depends on the nucleus' orientation, on real crops and
through the simulator's run-time path.

A nucleus has no preferred orientation in a dish, and the simulator draws each cell at a random
angle: it rotates the cell's real crop from its nucleus bank (``smartscope.sim.bank``). This script
separates what the rendering does from what the model does:

1. real labelled crops (the bundle's test folders, or ``--folders``) and the simulator's bank crops
   of ``--phase``, each rotated by every angle of ``--step-deg`` (bilinear, the field outside the
   crop filled with its background level), cut to the model's field and classified;
2. the same bank crops rendered by the simulator (``smartscope.sim.render``: one cell per frame,
   isolated, the camera's photometry and noise at ``--exposure-ms``) at each angle and objective,
   then found, cut and classified by the acquisition path (``classify_frame``);
3. the metaphases of the simulated sample itself (``--seeds`` slides, random angles, sizes and
   neighbours), through the same path.

Prints, per angle, the median probability and the fraction called the phase at ``--threshold``
(most probable class and probability >= threshold, as a trigger counts), and plots both
(``--png``). If the rendered rows follow the rotated real crops, the rendering is faithful and
the orientation dependence is the model's.

Usage::

    python scripts/orientation_check.py models/hela_h2b_5class --png orientation.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="model bundle folder")
    p.add_argument("--phase", default="metaphase")
    p.add_argument("--folders", type=Path, nargs="*", default=None,
                   help="labelled folders with a <phase> subfolder and dataset.json (default: the "
                        "card's test folders under data/)")
    p.add_argument("--step-deg", type=float, default=15.0)
    p.add_argument("--threshold", type=float, default=0.85)
    p.add_argument("--objectives", nargs="*", default=["10x", "20x"])
    p.add_argument("--exposure-ms", type=float, default=20.0)
    p.add_argument("--seeds", type=int, default=4, help="simulated slides for part 3")
    p.add_argument("--png", type=Path, default=None)
    return p.parse_args(argv)


def rotate(crop: np.ndarray, deg: float) -> np.ndarray:
    """``crop`` rotated by ``deg`` about its centre; outside read the background (5th pct)."""
    from scipy import ndimage

    arr = np.asarray(crop, np.float32)
    return ndimage.rotate(arr, deg, reshape=False, order=1, mode="constant",
                          cval=float(np.percentile(arr, 5)))


def called(probs: np.ndarray, k: int, threshold: float) -> np.ndarray:
    """Rows whose most probable class is ``k`` with at least ``threshold``."""
    return (probs.argmax(axis=1) == k) & (probs[:, k] >= threshold)


def real_rows(clf, folders, phase, angles, threshold):  # type: ignore[no-untyped-def]
    import tifffile

    from smartscope.vision.crops import refield_crop
    from smartscope.vision.dataset import folder_pixel_size
    from smartscope.vision.preprocess import normalise

    k = clf.classes.index(phase)
    out = {}
    for folder in folders:
        px = folder_pixel_size(folder, None)
        files = sorted((folder / phase).glob("*.tif"))
        if px is None or not files:
            continue
        crops = [tifffile.imread(f).astype(np.float32) for f in files]
        out[f"real {folder.parent.name}/{folder.name} ({len(files)})"] = _score(
            clf, [[refield_crop(rotate(c, a), px, clf.card.input.crop_um) for c in crops]
                  for a in angles], k, threshold, normalise)
    return out


def _score(clf, batches, k, threshold, normalise):  # type: ignore[no-untyped-def]
    rows = []
    for batch in batches:
        probs = clf.predict(normalise(np.stack(batch))[..., None])
        rows.append((float(np.median(probs[:, k])), float(called(probs, k, threshold).mean())))
    return rows


def bank_rows(clf, phase, angles, threshold, objectives, exposure_ms):  # type: ignore[no-untyped-def]
    from smartscope import phases
    from smartscope.classify import classify_frame
    from smartscope.sim.bank import PACKAGED_BANK, NucleusBank
    from smartscope.sim.config import SimConfig
    from smartscope.sim.render import Renderer, View
    from smartscope.sim.sample import CellTruth
    from smartscope.vision.crops import refield_crop
    from smartscope.vision.preprocess import normalise

    k = clf.classes.index(phase)
    bank = NucleusBank.load(PACKAGED_BANK)
    n = bank.count(phase)
    with np.load(PACKAGED_BANK, allow_pickle=False) as z:
        raw = [c for c, p in zip(z["crops"], z["phases"], strict=True) if p == phase]
    out = {f"bank crops as stored ({n})": _score(
        clf, [[refield_crop(rotate(c, a), bank.pixel_size_um, clf.card.input.crop_um)
               for c in raw] for a in angles], k, threshold, normalise)}
    # one cell id per bank crop (the bank picks a cell's crop from its id)
    ids: dict[int, int] = {}
    cid = 0
    while len(ids) < n and cid < 100_000:
        j = int(np.random.default_rng([cid, phases.ALL_PHASES.index(phase)]).integers(n))
        ids.setdefault(j, cid)
        cid += 1
    cfg = SimConfig(seed=0)
    rng = np.random.default_rng(0)
    for obj in objectives:
        ps = cfg.objectives[obj].pixel_size_um
        rows = []
        for a in angles:
            r = Renderer(cfg, bank)  # fresh: sprites are cached per cell, not per angle
            view = View(0.0, 0.0, cfg.focal_plane_um(obj), obj, "FITC", exposure_ms, True,
                        (255, 255))
            probs = []
            for cell_id in ids.values():
                cell = CellTruth(cell_id, None, 0.0, 0.0, phase, 600.0, 1200.0, np.radians(a),
                                 1.0, 1.0, None, None)
                fr = classify_frame(r.frame(view, [cell], rng), ps, clf)
                d = np.hypot(fr.nuclei.x - 127, fr.nuclei.y - 127) * ps
                j = int(np.argmin(d)) if len(fr) else -1
                probs.append(fr.probabilities[j] if j >= 0 and d[j] < 6 else
                             np.zeros(len(clf.classes), np.float32))
            p = np.stack(probs)
            rows.append((float(np.median(p[:, k])), float(called(p, k, threshold).mean())))
        out[f"bank crops rendered, {obj}, {exposure_ms:g} ms ({n})"] = rows
    return out


def sample_row(clf, phase, threshold, objectives, exposure_ms, seeds):  # type: ignore[no-untyped-def]
    from smartscope.classify import classify_frame
    from smartscope.sim.bank import load_bank
    from smartscope.sim.config import SimConfig
    from smartscope.sim.render import Renderer, View
    from smartscope.sim.sample import Sample

    k = clf.classes.index(phase)
    out = {}
    bank = load_bank(None, True)
    for obj in objectives:
        probs = []
        for seed in range(seeds):
            cfg = SimConfig(seed=seed, n_cells=700)
            r, sample, rng = Renderer(cfg, bank), Sample(cfg), np.random.default_rng(seed)
            ps = cfg.objectives[obj].pixel_size_um
            for t in (0.0, 5 * 3600.0, 11 * 3600.0):
                cells = sample.cells_at(t)
                for m in (c for c in cells if c.phase == phase):
                    view = View(m.x_um, m.y_um, cfg.focal_plane_um(obj), obj, "FITC",
                                exposure_ms, True, (256, 256))
                    fr = classify_frame(r.frame(view, cells, rng), ps, clf)
                    d = np.hypot(fr.nuclei.x - 127.5, fr.nuclei.y - 127.5) * ps
                    j = int(np.argmin(d)) if len(fr) else -1
                    if j >= 0 and d[j] < 6:
                        probs.append(fr.probabilities[j])
        p = np.stack(probs)
        out[f"simulated sample, {obj} ({len(p)} {phase}s detected, seeds 0-{seeds - 1})"] = (
            float(np.median(p[:, k])), float(called(p, k, threshold).mean()))
    return out


def plot(path: Path, angles, curves, flat, phase, threshold) -> None:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for name, rows in curves.items():
        style = "--" if name.startswith("bank crops rendered") else "-"
        for ax, i in ((axes[0], 0), (axes[1], 1)):
            ax.plot(angles, [r[i] for r in rows], style, marker="o", ms=3, label=name)
    for name, (med, frac) in flat.items():
        axes[0].axhline(med, color="grey", lw=0.8, ls=":")
        axes[1].axhline(frac, color="grey", lw=0.8, ls=":")
        axes[1].annotate(name, (angles[0], frac), fontsize=6, va="bottom")
    axes[0].set_ylabel(f"median p({phase})")
    axes[1].set_ylabel(f"fraction called {phase} at >= {threshold}")
    for ax in axes:
        ax.set_xlabel("rotation from the recorded orientation, degrees")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from smartscope.classify import Classifier

    clf = Classifier(args.bundle, num_threads=1)
    if args.phase not in clf.classes:
        print(f"{args.bundle}: no class {args.phase!r} (classes {clf.classes})", file=sys.stderr)
        return 2
    folders = args.folders
    if folders is None:
        test = clf.card.training.get("test_folder", "")
        folders = [REPO / "data" / f.strip() for f in str(test).split(",") if f.strip()]
    angles = list(np.arange(0.0, 180.0 + 1e-9, args.step_deg))
    curves = real_rows(clf, folders, args.phase, angles, args.threshold)
    curves.update(bank_rows(clf, args.phase, angles, args.threshold, args.objectives,
                            args.exposure_ms))
    flat = sample_row(clf, args.phase, args.threshold, args.objectives, args.exposure_ms,
                      args.seeds)
    print(f"{args.bundle.name}: p({args.phase}) median / fraction called at >= "
          f"{args.threshold}, by rotation (degrees)")
    print(f"{'':58s}" + "".join(f"{a:>11.0f}" for a in angles) + f"{'mean':>11s}")
    for name, rows in curves.items():
        cells = "".join(f"{m:5.2f}/{f:4.2f}" .rjust(11) for m, f in rows)
        mean = f"{np.mean([m for m, _ in rows]):5.2f}/{np.mean([f for _, f in rows]):4.2f}"
        print(f"{name[:58]:58s}{cells}{mean.rjust(11)}")
    for name, (med, frac) in flat.items():
        print(f"{name}: median {med:.2f}, called at >= {args.threshold}: {frac:.2f}")
    if args.png is not None:
        plot(args.png, angles, curves, flat, args.phase, args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
