"""Hook latency in a simulated run: image in -> follow-up events queued, p50 / p95.

What it measures: a real smart acquisition (``smartscope.acquire.Run``: pycromanager's Python
engine driving the simulated microscope's Micro-Manager core) screens one field at 10x in FITC,
back to back, at each camera size. For every screening image the acquisition hook
(``SmartHook``, pycromanager's ``image_process_fn``) finds the nuclei, crops, classifies them with
the int8 model through LiteRT, evaluates the trigger rule and puts the next event on the queue;
the hook's own clock gives the latency of each image (the figure ``run.json`` reports). The first
``--warmup`` images of each run are dropped. Also reported: where the time goes inside the hook
(detect / crop / classify, from ``classify_frame``'s timings) and the frame cycle (image to image,
camera exposure, rendering and saving included).

Targets (2048 x 2048, about 250 nuclei): p50 <= 0.3 s, p95 <= 0.5 s.

    python benchmarks/hook_latency.py                  # 1024 and 2048, 40 timed images each
    python benchmarks/hook_latency.py --quick          # smoke run: 256 px, a few images
"""

from __future__ import annotations

import itertools
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Report,
    arg_parser,
    benchmark_bundle,
    summarise,
    verdict,
)

TARGET_P50_MS = 300.0
TARGET_P95_MS = 500.0
N_CELLS = 250  # on the simulator's 1 x 1 mm slide: ~250 nuclei in a 2048 px field at 10x


def run_once(sensor_px: int, frames: int, bundle: Path, threads: int, n_cells: int,
             seed: int, out_root: Path, diameter_um: float) -> dict[str, Any]:
    """One simulated screening run; returns the per-image latencies and breakdowns (ms)."""
    from smartscope.acquire import Run
    from smartscope.classify import Classifier, classify_frame
    from smartscope.protocol import (
        Detection,
        ModelSpec,
        Protocol,
        Screening,
        SimulatedMicroscope,
        Stop,
        Trigger,
    )

    classifier = Classifier(bundle, num_threads=threads)
    phase = "metaphase" if "metaphase" in classifier.classes else classifier.classes[-1]
    protocol = Protocol(
        version=1,
        microscope=SimulatedMicroscope(seed=seed, n_cells=n_cells, time_scale=60,
                                       sensor_px=sensor_px),
        screening=Screening(objective="10x", channel="FITC", exposure_ms=20, interval_s=0,
                            n_timepoints=frames),
        model=ModelSpec(bundle=bundle, num_threads=threads),
        detection=Detection(diameter_um=diameter_um),
        # evaluated on every image but never fires, so every image is a full screening frame
        triggers=(Trigger(name="never", phase=phase, min_cells=10**6, actions=(Stop(),)),),
    )
    diameter = protocol.detection.diameter_um
    steps: list[dict[str, float]] = []
    cells: list[int] = []
    stamps: list[float] = []

    def classify(image: Any, pixel_size_um: float) -> Any:
        c0 = time.thread_time()
        result = classify_frame(image, pixel_size_um, classifier, diameter_um=diameter)
        steps.append({**result.timings_ms, "cpu": 1e3 * (time.thread_time() - c0)})
        cells.append(len(result))
        return result.cells

    out = Path(tempfile.mkdtemp(prefix=f"hook{sensor_px}_", dir=out_root))
    run = Run(protocol, out, simulate=True, classifier=classifier, classify=classify,
              progress=lambda p: stamps.append(time.perf_counter()))
    summary = run.execute()
    if summary.status != "completed" or summary.errors:
        raise RuntimeError(f"simulated run {summary.status} with {summary.errors} hook errors: "
                           f"{summary.error or 'see decisions.jsonl'}")
    assert run.hook is not None
    return {"latency_ms": list(run.hook.latencies_ms), "steps": steps, "cells": cells,
            "cycle_ms": [1e3 * (b - a) for a, b in zip(stamps, stamps[1:], strict=False)],
            "errors": summary.errors}


def main(argv: list[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="camera sensor sides, px (default 1024 2048; quick: 256)")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="LiteRT interpreter threads, one run each (default 1 2; quick: 1)")
    p.add_argument("--bundle", type=Path, default=None,
                   help="model bundle (default: the shipped one, else an untrained paper-sized "
                        "int8 discriminator)")
    p.add_argument("--n-cells", type=int, default=N_CELLS, help="cells on the simulated slide")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--diameter-um", type=float, default=None,
                   help="expected nucleus diameter of the protocol's detection (default: the "
                        "detection's HeLa default, smartscope.vision DEFAULT_DIAMETER_UM)")
    args = p.parse_args(argv)
    from smartscope.vision import DEFAULT_DIAMETER_UM

    diameter = args.diameter_um or DEFAULT_DIAMETER_UM
    logging.basicConfig(level=logging.WARNING)
    sizes = args.sizes or ([256] if args.quick else [1024, 2048])
    thread_counts = args.threads or ([1] if args.quick else [1, 2])
    repeats = args.repeats or (4 if args.quick else 40)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    bundle, bundle_note = benchmark_bundle(args.bundle)

    report = Report(
        "hook_latency",
        "acquisition hook latency in a simulated run (image in -> events queued)",
        settings={"sizes_px": sizes, "timed_images": repeats, "warmup_images": warmup,
                  "threads": thread_counts, "n_cells_on_slide": args.n_cells,
                  "diameter_um": diameter,
                  "objective": "10x (0.645 um/px)", "bundle": bundle_note, "quick": args.quick},
    )
    with tempfile.TemporaryDirectory(prefix="smartscope-hook-") as tmp:
        for size, threads in itertools.product(sizes, thread_counts):
            raw = run_once(size, warmup + repeats, bundle, threads, args.n_cells,
                           args.seed, Path(tmp), diameter)
            lat = summarise(raw["latency_ms"][warmup:])
            parts = {k: summarise([s[k] for s in raw["steps"][warmup:]])
                     for k in ("detect", "crop", "classify", "total", "cpu")}
            cycle = summarise(raw["cycle_ms"][warmup:])
            nuclei = summarise(raw["cells"][warmup:], unit="nuclei")
            other = lat.median - parts["total"].median
            report.results[f"{size}px_{threads}t"] = {
                "size_px": size, "threads": threads,
                "latency_ms": lat, "steps_ms": parts, "cycle_ms": cycle, "nuclei": nuclei,
                "hook_other_ms_median": other, "errors": raw["errors"],
                "latency_ms_samples": [round(v, 2) for v in raw["latency_ms"]],
            }
            row = {
                "sensor": f"{size}x{size}", "threads": threads, "nuclei": f"{nuclei.median:.0f}",
                "p50 ms": f"{lat.median:.0f}", "p95 ms": f"{lat.p95:.0f}",
                "max ms": f"{lat.max:.0f}",
                "detect": f"{parts['detect'].median:.0f}", "crop": f"{parts['crop'].median:.0f}",
                "classify": f"{parts['classify'].median:.0f}", "rest of hook": f"{other:.0f}",
                "CPU ms": f"{parts['cpu'].median:.0f}" if threads == 1 else "-",
                "frame cycle ms": f"{cycle.median:.0f}",
            }
            if size == 2048:
                row["target p50/p95"] = (f"{TARGET_P50_MS:.0f}/{TARGET_P95_MS:.0f}: "
                                         f"{verdict(lat.median, TARGET_P50_MS)}/"
                                         f"{verdict(lat.p95, TARGET_P95_MS)}")
            report.rows.append(row)
    report.notes.append("step columns are medians in ms inside the hook; 'rest of hook' = "
                        "latency - detect - crop - classify (decision, events, cells.csv rows); "
                        "'CPU ms' = CPU time of the hook's thread for detect + crop + classify "
                        "(about the wall time on an idle machine; shown for 1 thread only: "
                        "LiteRT's other threads are not counted)")
    if args.quick:
        report.notes.append("quick mode: small sensor, few images; not comparable to targets")
    report.print()
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
