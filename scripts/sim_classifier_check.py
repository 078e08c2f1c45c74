"""How a model bundle classifies simulated nuclei, against the simulator's ground truth.

Snaps 2048 x 2048 10x frames of the simulated microscope (several seeds and stage positions, a
manual clock), runs the acquisition path's ``classify_frame`` with each bundle, matches every
detection to the nearest true cell (within 6 um; else "none") and prints, per bundle, the table of
true phase against called phase (all calls, and in brackets those at or above ``--threshold``),
then for each mitotic class how many calls at or above the threshold land on a true cell of that
phase (what a trigger with that ``min_confidence`` would act on).

Usage::

    python scripts/sim_classifier_check.py models/hela_h2b_5class [OTHER_BUNDLE ...] \
        [--seeds 6] [--cells 700] [--threshold 0.85]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

POSITIONS_UM = ((-300, -300), (300, -300), (-300, 300), (300, 300), (0, 0))
MATCH_UM = 6.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+", type=Path, help="model bundle folders")
    p.add_argument("--seeds", type=int, default=6, help="simulated slides (seeds 0..N-1)")
    p.add_argument("--cells", type=int, default=700, help="cells per slide (1 x 1 mm)")
    p.add_argument("--threshold", type=float, default=0.85, help="trigger min_confidence")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from smartscope.classify import Classifier, classify_frame
    from smartscope.sim import ManualClock, start
    from smartscope.sim.config import SimConfig

    clfs = {str(b): Classifier(b) for b in args.bundles}
    tally: dict[str, collections.Counter] = {b: collections.Counter() for b in clfs}
    truth_n: collections.Counter = collections.Counter()
    for seed in range(args.seeds):
        cfg = SimConfig(seed=seed, n_cells=args.cells, sensor_px=2048,
                        start_time_s=3600.0 * 7 * seed)
        with start(cfg, clock=ManualClock()) as scope:
            core = scope.core
            for x, y in POSITIONS_UM:
                core.setXYPosition(float(x), float(y))
                core.waitForSystem()
                core.snapImage()
                image = core.getImage()
                truth = scope.truth(in_view=True)
                px = core.getPixelSizeUm()
                truth_n.update(c.phase for c in truth)
                for name, clf in clfs.items():
                    for cell in classify_frame(image, px, clf).cells:
                        near = min(truth, key=lambda c: (c.col_px - cell.x) ** 2
                                   + (c.row_px - cell.y) ** 2)
                        d_um = np.hypot(near.col_px - cell.x, near.row_px - cell.y) * px
                        phase = near.phase if d_um < MATCH_UM else "none"
                        tally[name][(phase, cell.phase, cell.confidence >= args.threshold)] += 1
    print(f"true cells in view over {args.seeds * len(POSITIONS_UM)} frames: {dict(truth_n)}")
    for name, t in tally.items():
        called = sorted({k[1] for k in t})
        print(f"\n== {name}: true phase (rows) vs called phase; [at or above {args.threshold}]")
        print(f"  {'':13s}" + "".join(f"{c:>18s}" for c in called))
        for tp in sorted({k[0] for k in t}):
            cells = "".join(f"{t[(tp, c, False)] + t[(tp, c, True)]:>10d} [{t[(tp, c, True)]:>5d}]"
                            for c in called)
            print(f"  {tp:13s}{cells}")
        for phase in called:
            if phase == "interphase":
                continue
            hits = collections.Counter({tp: v for (tp, c, hi), v in t.items()
                                        if c == phase and hi})
            total = sum(hits.values())
            right = hits[phase] + (hits["telophase"] if phase == "anaphase" else 0)
            print(f"  calls of {phase} at >= {args.threshold}: {total}, on a true {phase}: "
                  f"{right} ({right / max(total, 1):.2f}); on interphase: {hits['interphase']}, "
                  f"apoptosis: {hits['apoptosis']}, no cell: {hits['none']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
