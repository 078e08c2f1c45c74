"""Soak: a long simulated smart acquisition with triggers firing. Nothing dropped, memory flat,
hook latency steady.

What it measures: a real smart acquisition (``smartscope.acquire.Run``: pycromanager's Python
engine driving the simulated microscope) screens two fields at 10x back to back; every screening
image goes through the hook (nucleus detection, labelling, trigger rule) and a metaphase starts a
follow-up (switch to 60x centred on the cell, fast time-lapse while it stays in metaphase,
z-stack, back to screening). After ``--frames`` images the run is ended and checked:

- dropped images: every image the hook saw (every executed event) is in the NDTiff data set on
  disk, which is closed and readable; none missing (images of events already queued when the
  end was requested are saved without being decided on: reported as ``images_after_end``);
- memory: resident set size (RSS) of the process after every image; the peak after warm-up minus
  the RSS at the end of warm-up must stay under ``--max-growth-mb`` (50 MB);
- latency: hook latency per image (the hook's own clock) of the classified frames, per quarter
  of the run after warm-up; steady when the last quarter's median is within 1.5x (+10 ms) of the
  first's. The simulated cells divide, so at a high ``--time-scale`` a long run ends with more
  nuclei per field than it started with (``nuclei_mean`` per quarter): latency then rises with the
  work, not with the run's age; keep the population steady (e.g. ``--time-scale 120`` with
  ``--labels model``) to judge it.

Labels (``--labels``): ``truth`` (default) runs the package's real nucleus detection and labels
each nucleus with the simulator's ground-truth phase, so triggers fire whatever model is
installed; ``model`` classifies with a model bundle through LiteRT (``--bundle``, default the
shipped one).

    python benchmarks/soak.py                                  # short form (100 images)
    python benchmarks/soak.py --frames 1000 --json soak.json   # the long form reported
"""

from __future__ import annotations

import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Report, arg_parser, shipped_bundle  # noqa: E402

MAX_GROWTH_MB = 50.0
#: the simulator's sprite cache (a renderer cost that no real microscope has) is capped at this
SIM_CACHE_MB = 16.0
#: latency steadiness is judged only with at least this many classified frames per quarter
MIN_QUARTER_FRAMES = 10
FIVE = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")
#: simulator phase -> the model's five classes
TO_FIVE = {"prophase": "interphase", "telophase": "anaphase"}


def soak_protocol(sensor_px: int, seed: int, bundle: str, time_scale: float) -> Any:
    """The soak's protocol: 2 screening fields, a metaphase zoom follow-up, no end of its own."""
    from smartscope.protocol import parse_protocol

    return parse_protocol({
        "version": 1,
        "microscope": {"type": "simulated", "seed": seed, "n_cells": 300,
                       "sensor_px": sensor_px, "time_scale": time_scale,
                       "objectives": {"10x": {}, "60x": {"parfocal_z_offset_um": 3.0}}},
        "screening": {"grid": {"rows": 1, "cols": 2, "spacing_um": 400},
                      "objective": "10x", "channel": "FITC", "exposure_ms": 5,
                      "interval_s": 0.0, "n_timepoints": 100000},
        "model": {"bundle": bundle},
        "detection": {"diameter_um": 12},
        "triggers": [{
            "name": "metaphase_zoom", "phase": "metaphase", "min_confidence": 0.6,
            "cooldown_s": 2.0,
            "actions": [
                {"type": "centre_on_cell", "objective": "60x"},
                {"type": "change_interval", "interval_s": 0.0, "min_frames": 2,
                 "max_frames": 5},
                {"type": "z_stack", "range_um": 4, "step_um": 2},
                {"type": "return_to_screening"},
            ],
        }],
        "on_error": "continue",
    }, "soak")


class TruthLabeller:
    """Real nucleus detection; each nucleus gets the phase of the nearest true cell in view
    (the simulator's ground truth), so the soak's triggers fire without a trained model."""

    classes = FIVE
    card = None

    def __init__(self, sim: Any, diameter_um: float) -> None:
        self.sim = sim
        self.diameter_um = diameter_um

    def __call__(self, image: Any, pixel_size_um: float) -> list[Any]:
        import numpy as np

        from smartscope.classify import Cell
        from smartscope.vision import find_nuclei

        nuclei = find_nuclei(image, pixel_size_um, self.diameter_um)
        truth = self.sim.truth(in_view=True)
        if not truth:
            return []
        ty = np.array([c.row_px for c in truth])
        tx = np.array([c.col_px for c in truth])
        reach = (self.diameter_um / pixel_size_um) ** 2
        cells = []
        for k in range(len(nuclei)):
            d2 = (ty - nuclei.y[k]) ** 2 + (tx - nuclei.x[k]) ** 2
            j = int(np.argmin(d2))
            phase = truth[j].phase if d2[j] <= reach else "interphase"
            phase = TO_FIVE.get(phase, phase)
            probs = {c: 0.95 if c == phase else 0.0125 for c in FIVE}
            cells.append(Cell(y=float(nuclei.y[k]), x=float(nuclei.x[k]), phase=phase,
                              confidence=0.95, area_um2=float(nuclei.area_um2[k]),
                              probabilities=probs))
        return cells


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _dataset_keys(out: Path) -> tuple[list[tuple], bool]:
    """(data set, axes) of the images on disk (screening and follow-up data sets), and whether
    every TIFF file reads as a closed file."""
    import tifffile
    from ndstorage import Dataset

    from smartscope.acquire.repair import find_datasets
    from smartscope.decide import axes_key

    keys: list[tuple] = []
    pages = 0
    for folder in find_datasets(out):
        ds = Dataset(str(folder))
        try:
            rel = folder.relative_to(out).as_posix()
            keys += [(rel, axes_key(a)) for a in ds.get_image_coordinates_list()]
        finally:
            ds.close()
        for f in folder.glob("*.tif"):
            with tifffile.TiffFile(f) as tif:
                pages += len(tif.pages)
    return keys, pages == len(keys)


def _frame_keys(out: Path) -> list[tuple]:
    """(data set, axes) of every image the hook decided on, as ``frames.csv`` names them."""
    import csv
    import json

    from smartscope.decide import axes_key

    with (out / "frames.csv").open(newline="") as fh:
        return [(r["dataset"], axes_key(json.loads(r["axes"]))) for r in csv.DictReader(fh)]


def soak(frames: int, *, sensor_px: int = 512, seed: int = 0, labels: str = "truth",
         bundle: Path | None = None, time_scale: float = 600.0, warmup: int | None = None,
         out_dir: Path | None = None, max_growth_mb: float = MAX_GROWTH_MB,
         sim_cache_mb: float | None = SIM_CACHE_MB) -> dict[str, Any]:
    """Run the soak; returns the results (see the module docstring).

    ``sim_cache_mb`` caps the simulator's sprite cache (bounded, 256 MB by default) so that the
    memory figure is the acquisition's, not the renderer's; None keeps the simulator's default.
    """
    from smartscope.acquire import Run, connect
    from smartscope.sim import render

    cache_default = render.CACHE_BYTES
    if sim_cache_mb is not None:
        render.CACHE_BYTES = int(sim_cache_mb * 2**20)

    warmup = warmup if warmup is not None else max(20, frames // 10)
    tmp = None
    if out_dir is None:
        tmp = tempfile.mkdtemp(prefix="smartscope-soak-")
        out_dir = Path(tmp) / "run"
    if labels == "model":
        bundle = bundle or shipped_bundle()
        if bundle is None:
            raise SystemExit("--labels model needs --bundle (no shipped bundle found)")
    proto = soak_protocol(sensor_px, seed, str(bundle or "unused"), time_scale)
    per_frame: list[dict[str, Any]] = []
    holder: dict[str, Run] = {}

    def observe(frame: Any) -> None:
        hook = holder["run"].hook
        per_frame.append({"i": frame.index, "mode": frame.request.mode,
                          "classified": frame.cells is not None,
                          "nuclei": len(frame.cells) if frame.cells is not None else 0,
                          "latency_ms": hook.latencies_ms[-1] if hook.latencies_ms else None,
                          "rss_mb": _rss_mb(), "threads": threading.active_count()})
        if len(per_frame) >= frames:
            hook.request_stop()

    t0 = time.perf_counter()
    try:
        with connect(proto, simulate=True) as scope:
            if labels == "truth":
                classifier = classify = TruthLabeller(scope.sim, proto.detection.diameter_um)
            else:
                from smartscope.classify import Classifier

                classifier, classify = Classifier(bundle), None
            run = Run(proto, out_dir, scope=scope, classifier=classifier, classify=classify,
                      observers=[observe], stall_timeout_s=60.0)
            holder["run"] = run
            summary = run.execute()
        wall_s = time.perf_counter() - t0
        disk_keys, closed = _dataset_keys(out_dir)
        seen_keys = _frame_keys(out_dir)
    finally:
        render.CACHE_BYTES = cache_default
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    missing = len(set(seen_keys) - set(disk_keys))
    after_end = len(disk_keys) - len(set(disk_keys) & set(seen_keys))
    after = per_frame[warmup:] if len(per_frame) > warmup else per_frame
    rss_base = per_frame[min(warmup, len(per_frame)) - 1]["rss_mb"] if per_frame else 0.0
    rss_peak = max((f["rss_mb"] for f in after), default=rss_base)
    slope = _slope([f["i"] for f in after], [f["rss_mb"] for f in after]) * 100
    classified = [f for f in after if f["classified"] and f["latency_ms"] is not None]
    quarters = [classified[k * len(classified) // 4:(k + 1) * len(classified) // 4]
                for k in range(4)]
    rows = []
    for k, q in enumerate(quarters):
        lat = [f["latency_ms"] for f in q]
        rows.append({
            "quarter": k + 1, "frames": len(q),
            "nuclei_mean": round(statistics.fmean(f["nuclei"] for f in q), 1) if q else None,
            "p50_ms": round(statistics.median(lat), 1) if lat else None,
            "p95_ms": round(_pct(lat, 95), 1) if lat else None,
            "max_ms": round(max(lat), 1) if lat else None,
            "rss_end_mb": round(q[-1]["rss_mb"], 1) if q else None,
            "threads": q[-1]["threads"] if q else None,
        })
    first, last = rows[0]["p50_ms"], rows[-1]["p50_ms"]
    steady: bool | None = first is not None and last is not None and last <= 1.5 * first + 10
    if min(len(q) for q in quarters) < MIN_QUARTER_FRAMES:
        steady = None  # too few classified frames to judge (e.g. --quick)
    growth = rss_peak - rss_base
    return {
        "frames": summary.frames, "screening_frames": summary.screening_frames,
        "followup_frames": summary.followup_frames, "triggers_fired": summary.triggers_fired,
        "errors": summary.errors, "status": summary.status, "wall_s": round(wall_s, 1),
        "frames_per_s": round(summary.frames / wall_s, 2) if wall_s else None,
        "images_on_disk": len(disk_keys), "images_missing": missing,
        "images_after_end": after_end,
        "dataset_closed": closed,
        "warmup_frames": warmup, "rss_warmup_mb": round(rss_base, 1),
        "rss_peak_after_warmup_mb": round(rss_peak, 1), "rss_growth_mb": round(growth, 1),
        "rss_slope_mb_per_100_frames": round(slope, 2),
        "latency_quarters": rows, "latency_steady": steady,
        "ok": (missing == 0 and closed and growth < max_growth_mb and steady is not False
               and summary.errors == 0),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _slope(x: list[float], y: list[float]) -> float:
    if len(x) < 2:
        return 0.0
    mx, my = statistics.fmean(x), statistics.fmean(y)
    den = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / den if den else 0.0


def main() -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100, help="images before the run is ended")
    p.add_argument("--sensor-px", type=int, default=512, help="camera side, px")
    p.add_argument("--labels", choices=("truth", "model"), default="truth")
    p.add_argument("--bundle", type=Path, default=None, help="model bundle for --labels model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-scale", type=float, default=600.0,
                   help="simulated seconds per real second (mitoses come often)")
    p.add_argument("--out", type=Path, default=None, help="keep the run folder here")
    p.add_argument("--max-growth-mb", type=float, default=MAX_GROWTH_MB)
    p.add_argument("--sim-cache-mb", type=float, default=SIM_CACHE_MB,
                   help="cap of the simulator's sprite cache; 0 or less: the simulator's own")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    frames = 40 if args.quick else args.frames
    report = Report("soak", "long simulated smart acquisition: no image dropped, RSS flat after "
                    "warm-up, hook latency steady",
                    settings={"frames": frames, "sensor_px": args.sensor_px,
                              "labels": args.labels, "seed": args.seed,
                              "time_scale": args.time_scale, "max_growth_mb": args.max_growth_mb,
                              "sim_cache_mb": args.sim_cache_mb})
    res = soak(frames, sensor_px=args.sensor_px, seed=args.seed, labels=args.labels,
               bundle=args.bundle, time_scale=args.time_scale, out_dir=args.out,
               warmup=args.warmup, max_growth_mb=args.max_growth_mb,
               sim_cache_mb=args.sim_cache_mb if args.sim_cache_mb > 0 else None)
    report.results = res
    report.rows = res["latency_quarters"]
    report.notes += [
        f"{res['frames']} images ({res['screening_frames']} screening, "
        f"{res['followup_frames']} follow-up), {res['triggers_fired']} triggers fired, "
        f"{res['errors']} errors, {res['wall_s']} s ({res['frames_per_s']} images/s)",
        f"on disk {res['images_on_disk']}, missing {res['images_missing']} (saved after the "
        f"end: {res['images_after_end']}), data set closed: {res['dataset_closed']}",
        f"RSS {res['rss_warmup_mb']} MB after {res['warmup_frames']} warm-up images, peak "
        f"{res['rss_peak_after_warmup_mb']} MB (growth {res['rss_growth_mb']} MB, slope "
        f"{res['rss_slope_mb_per_100_frames']} MB/100 images); latency steady: "
        f"{res['latency_steady']}",
        "verdict: " + ("PASS" if res["ok"] else "FAIL"),
    ]
    report.print()
    report.write(args.json)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
