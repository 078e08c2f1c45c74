"""Before / after: detect, crop and classify the same frame with the package of earlier commits.

What it measures: for each git revision given, the package as it was at that revision (exported
with ``git archive`` into a temporary folder, never by touching the working tree) times
``find_nuclei``, ``prepare_crops`` and one batched ``Classifier.predict`` on the same frame with the
same model bundle, in a fresh process. Wall time and the CPU time of the calling thread are both
reported: on a busy machine the CPU time is the steadier figure. ``WORKTREE`` stands for the
files as they are now.

The frame: the simulated microscope's 2048 x 2048 10x frame (seed 0, 250 cells, about 260 nuclei)
rendered once with the current package and saved, so every revision sees the same pixels.

    python benchmarks/history.py ec1d2ab HEAD WORKTREE
    python benchmarks/history.py --quick HEAD            # smoke run: 512 px frame
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Report, arg_parser, benchmark_bundle  # noqa: E402

_CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import smartscope
    from smartscope.vision import find_nuclei, prepare_crops
    from smartscope.classify import Classifier
    frame_path, bundle, repeats, warmup, threads, diameter, px = sys.argv[1:8]
    repeats, warmup, threads = int(repeats), int(warmup), int(threads)
    diameter, px = float(diameter), float(px)
    frame = np.load(frame_path)
    clf = Classifier(bundle, num_threads=threads)
    crop_um = clf.card.input.crop_um

    def timed(fn):
        for _ in range(warmup):
            out = fn()
        wall, cpu = [], []
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.thread_time()
            out = fn()
            cpu.append(1e3 * (time.thread_time() - c0))
            wall.append(1e3 * (time.perf_counter() - w0))
        return out, wall, cpu

    nuclei, dw, dc = timed(lambda: find_nuclei(frame, px, diameter))
    crops, cw, cc = timed(lambda: prepare_crops(frame, nuclei.y, nuclei.x, px, crop_um=crop_um))
    _, kw, kc = timed(lambda: clf.predict(crops))
    print(json.dumps({"package": smartscope.__file__, "nuclei": len(nuclei),
                      "detect": [dw, dc], "crop": [cw, cc], "classify": [kw, kc]}))
""")


def export_revision(rev: str, dest: Path) -> Path:
    """The ``smartscope`` package of ``rev`` (or the working tree for WORKTREE) under ``dest``."""
    if rev == "WORKTREE":
        return REPO
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", rev, "smartscope"], cwd=REPO,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def sim_frame(side: int, path: Path) -> Path:
    """A simulated 10x frame (seed 0, 250 cells), rendered with the current package."""
    from smartscope.sim import SimConfig, start

    config = SimConfig(seed=0, n_cells=250, sensor_px=side, real_exposure_time=False)
    with start(config) as scope:
        scope.core.setExposure(20)
        scope.core.snapImage()
        frame = np.asarray(scope.core.getImage())
    np.save(path, frame)
    return path


def main(argv: list[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("revs", nargs="+", help="git revisions (WORKTREE: the files as they are)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--side", type=int, default=None, help="frame side, px (default 2048)")
    args = p.parse_args(argv)
    side = args.side or (512 if args.quick else 2048)
    repeats = args.repeats or (2 if args.quick else 7)
    warmup = args.warmup if args.warmup is not None else 1
    bundle, bundle_note = benchmark_bundle(args.bundle)
    report = Report("history", "detect / crop / classify of one frame at several revisions",
                    settings={"frame": f"simulated {side} px, 10x, seed 0", "repeats": repeats,
                              "warmup": warmup, "threads": args.threads, "bundle": bundle_note})
    with tempfile.TemporaryDirectory(prefix="smartscope-history-") as tmp:
        frame = sim_frame(side, Path(tmp) / "frame.npy")
        for rev in args.revs:
            root = export_revision(rev, Path(tmp) / rev.replace("/", "_"))
            env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD, str(frame), str(bundle), str(repeats),
                 str(warmup), str(args.threads), "12", "0.645"],
                cwd=tmp, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                report.rows.append({"revision": rev, "nuclei": "failed",
                                    "detect ms": proc.stderr.strip().splitlines()[-1][:80]})
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if not str(r["package"]).startswith(str(root)):
                raise RuntimeError(f"{rev}: imported {r['package']}, not the exported package")
            med = {k: (float(np.median(r[k][0])), float(np.median(r[k][1])))
                   for k in ("detect", "crop", "classify")}
            report.results[rev] = {"nuclei": r["nuclei"], **{
                k: {"wall_ms": r[k][0], "cpu_ms": r[k][1]} for k in med}}
            row = {"revision": rev, "nuclei": r["nuclei"]}
            for k, (w, c) in med.items():
                row[f"{k} ms (CPU)"] = f"{w:.0f} ({c:.0f})"
            total_w = sum(w for w, _ in med.values())
            total_c = sum(c for _, c in med.values())
            row["total ms (CPU)"] = f"{total_w:.0f} ({total_c:.0f})"
            report.rows.append(row)
    report.notes.append("medians; CPU = CPU time of the calling thread (LiteRT with 1 thread "
                        "runs in it)")
    report.print()
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
