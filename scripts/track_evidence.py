"""Does the evidence a track gathers over several screening frames separate true target-phase
cells from the rest better than one-frame thresholds?

``collect`` runs an example protocol on the simulated microscope (real MMCore, pycromanager's
Python engine, the real hook, tracker and int8 model, as ``benchmarks/event_capture.py`` does)
with its trigger unable to fire (``min_confidence`` 1, above the int8 model's largest output), so
every screening frame of the run is seen, and writes one row per detected nucleus per screening
frame: its track, eligibility for the trigger (border margin, area bounds), every class
probability, and the simulator's truth for it (the true cell the event-capture scorer matches it
to, ``SimTruth.cell_at``, and that cell's phase), plus the target-phase episodes of the screened
fields (``SimTruth.episodes``, the scorer's own).

``analyse`` replays trigger rules on those rows, causally, frame by frame, once per track (a
track that fired is followed and never fires again) and scores them as the event-capture
benchmark does: precision = firings on a cell truly in a target phase at that frame, recall =
episodes with a firing on their cell while it was in the phase. It ignores what a follow-up would
have cost (the microscope away at the new objective, the confirmation there): it compares the
screening evidence only. Each rule is swept over its threshold; the figure is precision against
recall.

    python scripts/track_evidence.py collect --first-seed 20 --seeds 5 --json ev.json
    python scripts/track_evidence.py analyse ev.json --plot docs/track_evidence.png
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from track_evidence_rules import (  # noqa: E402
    best_at,
    between_cells_share,
    first_crossings,
    rules,
    tracks,
    wrong_firings,
)

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("track_evidence")


# ----------------------------------------------------------------------------------------------
# collect


def collect_one(file: Path, seed: int, bundle: Path | None) -> dict[str, Any]:
    """One simulated run of ``file`` with sample ``seed``: rows per nucleus and frame, episodes."""
    import yaml

    from smartscope.acquire import Run
    from smartscope.acquire.capture import SimCapture
    from smartscope.acquire.connect import connect
    from smartscope.classify import Classifier
    from smartscope.decide import SCREEN, ScreenedField
    from smartscope.decide.capture import target_phases
    from smartscope.decide.triggers import eligible
    from smartscope.protocol import parse_protocol
    from smartscope.sim.truth import SimTruth, TimeMap

    sys.path.insert(0, str(REPO / "benchmarks"))
    from event_capture import simulated_microscope

    data = yaml.safe_load(file.read_text())
    data["microscope"] = simulated_microscope(data.get("microscope", {}), seed)
    data.pop("output", None)
    if bundle is not None:
        data["model"]["bundle"] = str(bundle)
    shipped = copy.deepcopy(data["triggers"][0])
    for t in data["triggers"]:
        t["min_confidence"] = 1.0  # never fires: int8 outputs stop at 255/256
    proto = parse_protocol(data, str(file), base_dir=file.parent)
    trig = parse_protocol({**data, "triggers": [shipped]}, str(file),
                          base_dir=file.parent).triggers[0]
    clf = Classifier(proto.model.bundle, num_threads=1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, connect(proto, simulate=True) as scope:
        cap = SimCapture(scope.sim, proto.triggers, (), clf.classes)
        summary = Run(proto, Path(tmp) / "run", simulate=True, scope=scope, classifier=clf,
                      observers=(cap,), source=str(file)).execute()
        screens = [f for f in cap.frames if f.request.mode == SCREEN and f.cells is not None]
        tmap = TimeMap.fit(cap.time_pairs(), scale=float(scope.sim.config.time_scale))
        truth = SimTruth(lambda t: scope.sim.truth(t_s=t), tmap)
        fields: dict[str, ScreenedField] = {}
        for f in screens:
            name = f.request.position_name or f"pos{f.request.position}"
            fields[name] = ScreenedField(name, f.request.x_um, f.request.y_um,
                                         f.shape[1] * f.pixel_size_um,
                                         f.shape[0] * f.pixel_size_um)
        rows = []
        for k, f in enumerate(screens):
            for c in f.cells or ():
                true = (truth.cell_at(c.x_um, c.y_um, f.time_s)
                        if c.x_um is not None and c.y_um is not None else None)
                rows.append({
                    "seed": seed, "position": f.request.position, "frame": k,
                    "time_s": round(f.time_s, 3), "track": c.track, "parent": c.parent,
                    "area_um2": round(c.area_um2, 1), "edge_um": round(c.edge_um, 1),
                    "eligible": eligible(trig, c), "phase": c.phase,
                    "probabilities": {p: round(float(v), 4) for p, v in c.probabilities.items()},
                    "truth_cell": true.id if true else None,
                    "truth_phase": true.phase if true else None})
        times = [f.time_s for f in screens]
        episodes = truth.episodes(target_phases(trig.phase, clf.classes), list(fields.values()),
                                  min(times), max(times))
    return {"seed": seed, "status": summary.status, "frames": len(screens),
            "hook_p50_ms": summary.latency_ms.get("median"),
            "wall_s": round(time.perf_counter() - t0, 1), "phase": list(trig.phase),
            "rows": rows, "episodes": [{"cell": e.cell, "start_s": e.start_s, "end_s": e.end_s}
                                       for e in episodes]}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cmd_collect(args: argparse.Namespace) -> int:
    runs = []
    for k in range(args.seeds):
        seed = args.first_seed + k
        before = load_average()
        r = collect_one(args.protocol.resolve(), seed, args.bundle)
        r["load_before"], r["load_after"] = before, load_average()
        runs.append(r)
        print(f"seed {seed}: {r['status']}, {r['frames']} screening frames, {len(r['rows'])} "
              f"nuclei, {len(r['episodes'])} episodes, hook p50 {r['hook_p50_ms']} ms, "
              f"{r['wall_s']} s, load {r['load_before']} -> {r['load_after']}", file=sys.stderr)
    out = {"protocol": args.protocol.stem, "first_seed": args.first_seed, "runs": runs}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out))
    return 0



# ----------------------------------------------------------------------------------------------
# analyse


def cmd_analyse(args: argparse.Namespace) -> int:
    runs = []
    for path in args.json:
        d = json.loads(path.read_text())
        runs += [{"protocol": d.get("protocol", ""), **r} for r in d["runs"]]
    target = runs[0]["phase"][0]
    thresholds = [k / 100 for k in range(5, 100)]
    curves = {}
    seeds = sorted(r["seed"] for r in runs)
    loads = [r.get("load_before", "n/a") for r in runs]
    ones = [float(x.split()[0]) for x in loads if x != "n/a"]
    load = f"{min(ones):.1f}-{max(ones):.1f}" if ones else "n/a"
    print(f"{len(runs)} runs (seeds {seeds}), target {target}, "
          f"{sum(len(r['episodes']) for r in runs)} episodes; load averages {loads}")
    print(f"| rule | most recall at precision >= {args.min_precision}: threshold | fires | "
          f"precision | recall |")
    print("|---|---:|---:|---:|---:|")
    for label, stat in rules().items():
        curves[label] = first_crossings(runs, stat, target, thresholds)
        b = best_at(curves[label], args.min_precision)
        if b is None:
            print(f"| {label} | none | | | |")
        else:
            print(f"| {label} | {b['threshold']:.2f} | {b['fires']} | {b['precision']:.2f} "
                  f"({b['right']}/{b['fires']}) | {b['recall']:.2f} ({b['caught']}/"
                  f"{b['episodes']}) |")
    for truth_target, what in ((True, f"cells truly in {target}"),
                               (False, f"other cells given p({target}) >= 0.3 in a frame")):
        b = between_cells_share(runs, target, truth_target)
        print(f"{what}: {b['cells']} cells, {b['frames']} eligible frames; share of the "
              f"variance of p({target}) between cells {b['between_share']:.2f}, median SD "
              f"over one cell's frames {b['within_sd']:.3f}")
    wrong = wrong_firings(runs, rules()[args.explain], target, args.explain_threshold)
    print(f"wrong firings of '{args.explain}' at {args.explain_threshold}: "
          + (", ".join(f"{k} {v}" for k, v in sorted(wrong.items())) or "none"))
    if args.plot is not None:
        plot(curves, runs, target, args.plot,
             f"{runs[0].get('protocol', '')} {target}: rules replayed on the tracks of seeds "
             f"{', '.join(map(str, seeds))} (screening frames only, once per track); 1-min "
             f"load average at the runs {load}")
    return 0


def plot(curves: dict[str, list[dict[str, Any]]], runs: Sequence[dict[str, Any]], target: str,
         path: Path, title: str) -> None:
    """Left: precision against recall per rule (a point per threshold). Middle: p(target) along
    the tracks that were in the target phase or reached 0.3. Right: the target's probability in
    each eligible screening frame, by the cell's true phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax, cx, bx) = plt.subplots(1, 3, figsize=(17, 5.6),
                                     gridspec_kw={"width_ratios": [3, 2.2, 2]})
    colours = {"each": "tab:blue", "mean": "tab:green", "order": "tab:red"}
    for label, curve in curves.items():
        pts = [(c["recall"], c["precision"]) for c in curve if c["precision"] is not None]
        n = label.split(",")[0].split()[-1]
        style = "-" if "called" in label else "--" if "p only" in label else ":"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=".", ms=3,
                lw=0.6 + 0.4 * (int(n) if n.isdigit() else 2),
                color=colours[label.split()[0]], alpha=0.85, label=label)
    ax.axhline(0.9, color="k", lw=0.6, ls="--")
    ax.set_xlabel("recall (episodes with a firing on their cell while in the phase)")
    ax.set_ylabel("precision (firings on a cell in the phase)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    ax.set_title("rules swept over their threshold (0.05-0.99)", fontsize=9)
    for run in runs:  # time courses: tracks with a frame in the target or a p(target) >= 0.3
        for tr in tracks(run):
            if not any(o.truth_phase == target or o.p.get(target, 0.0) >= 0.3 for o in tr):
                continue
            for a, b in zip(tr, tr[1:], strict=False):
                if b.frame - a.frame == 1 and a.eligible and b.eligible:
                    right = a.truth_phase == target and b.truth_phase == target
                    cx.plot([a.frame, b.frame], [a.p.get(target, 0.0), b.p.get(target, 0.0)],
                            color="tab:red" if right else "tab:grey", lw=0.8,
                            alpha=0.7 if right else 0.5)
    cx.set_xlabel("screening frame")
    cx.set_ylabel(f"p({target})")
    cx.set_title(f"tracks, frame to frame (red: in {target}; grey: other phases)", fontsize=9)
    cx.set_ylim(0, 1.02)
    phases: dict[str, list[float]] = {}
    for run in runs:
        for r in run["rows"]:
            if r["eligible"]:
                phases.setdefault(r["truth_phase"] or "no cell", []).append(
                    r["probabilities"].get(target, 0.0))
    names = sorted(phases, key=lambda k: -len(phases[k]))
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        v = np.asarray(phases[name])
        bx.scatter(i + rng.uniform(-0.3, 0.3, len(v)), v, s=3, alpha=0.4,
                   color="tab:red" if name == target else "tab:grey")
        bx.plot([i - 0.35, i + 0.35], [np.median(v)] * 2, color="k", lw=1)
    bx.set_xticks(range(len(names)), [f"{n}\n({len(phases[n])})" for n in names], fontsize=7)
    bx.set_ylabel(f"p({target}) per eligible screening frame")
    bx.set_title("what the model gives each true phase (bar: median)", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="simulated runs -> per-nucleus rows with the truth")
    c.add_argument("--protocol", type=Path, default=REPO / "acquisitions" / "mitosis_zoom.yaml")
    c.add_argument("--first-seed", type=int, default=20)
    c.add_argument("--seeds", type=int, default=5)
    c.add_argument("--bundle", type=Path, default=None)
    c.add_argument("--json", type=Path, required=True)
    a = sub.add_parser("analyse", help="replay trigger rules on collected rows")
    a.add_argument("json", type=Path, nargs="+")
    a.add_argument("--plot", type=Path, default=None)
    a.add_argument("--min-precision", type=float, default=0.9)
    a.add_argument("--explain", default="each 3, p only", help="rule whose wrong firings to list")
    a.add_argument("--explain-threshold", type=float, default=0.25)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return cmd_collect(args) if args.cmd == "collect" else cmd_analyse(args)


if __name__ == "__main__":
    sys.exit(main())
