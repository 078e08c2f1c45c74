"""Report speed and size: ``smartscope report`` on a long run (1,000 images by default).

What it measures: the time ``write_report`` takes on a run folder (reading ``cells.csv``,
``frames.csv``, ``decisions.jsonl`` and ``run.json``, opening the NDTiff data set, cutting one
screening crop and one follow-up thumbnail per trigger, the two plots, writing the page) and the
size of ``report.html``. The first call in the process (``cold``: imports matplotlib, Pillow and
ndstorage, reads the data set index) is reported apart from the repeats; the CPU time of the
process per warm report is given beside the wall time (on a loaded machine the two differ).

The run folder is either one you give (``--run DIR``, e.g. ``soak.py --frames 1000 --out DIR``)
or, by default, one written here the way a run writes it: the run's own sinks (``cells.csv``,
``frames.csv``, ``decisions.jsonl``) and NDTiff data sets written with ndstorage (the screening in
``screening_1/``, each follow-up's time-lapse in ``followup_<n>/03_change_interval/``), ``--frames``
images in all (screening frames of ``--sensor-px`` with ``--cells`` nuclei each; every
``--trigger-every`` screening frames a trigger and a follow-up of ``--followup-frames``
images at 60x). The images are synthetic (bright discs on noise): the report's cost depends on
the number of rows, triggers and images, not on what the pixels show.

    python benchmarks/report_speed.py                  # 1,000 images, 3 repeats
    python benchmarks/report_speed.py --quick          # 100 small images (CI smoke run)
    python benchmarks/report_speed.py --run runs/x     # an existing run folder
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Report, arg_parser, measure  # noqa: E402

CLASSES = ("interphase", "prometaphase", "metaphase", "anaphase")


def write_long_run(folder: Path, *, frames: int, sensor_px: int, cells: int, trigger_every: int,
                   followup_frames: int, seed: int = 0) -> dict[str, int]:
    """A run folder of ``frames`` images, written with the run's sinks and ndstorage."""
    from ndstorage import NDTiffDataset

    from smartscope.acquire.sinks import CellsCsv, DecisionsJsonl, FramesCsv, write_json_atomic

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ds = NDTiffDataset(str(folder), name="screening", writable=True)
    ds.initialize({"PixelSize_um": 0.645})
    sink_c = CellsCsv(folder / "cells.csv", CLASSES)
    sink_d = DecisionsJsonl(folder / "decisions.jsonl")
    sink_f = FramesCsv(folder / "frames.csv")
    yy, xx = np.mgrid[:sensor_px, :sensor_px]
    pos = rng.uniform(20, sensor_px - 20, (cells, 2))
    base = rng.normal(100, 3, (sensor_px, sensor_px))
    for y, x in pos:
        base += 600 * (((yy - y) ** 2 + (xx - x) ** 2) <= 9 ** 2)
    base_img = base.astype(np.uint16)
    follow_img = np.roll(base_img, sensor_px // 3, axis=0)
    n = t_screen = n_trig = 0
    t = 0.0
    while n < frames:
        t += 2.0
        axes = {"time": t_screen, "position": 0, "channel": "FITC"}
        ds.put_image(axes, np.roll(base_img, t_screen % 7, axis=1),
                     {"ElapsedTime-ms": t * 1000, "PixelSize_um": 0.645})
        phases = rng.choice(CLASSES, size=cells, p=(0.85, 0.07, 0.05, 0.03))
        sink_c.write([{"frame": n, "time_s": t, "position": "A1", "mode": "screen",
                       "objective": "10x", "channel": "FITC", "pixel_size_um": 0.645, "y": y,
                       "x": x, "phase": str(ph), "confidence": 0.9, "track": i,
                       "probabilities": {str(ph): 0.9}}
                      for i, ((y, x), ph) in enumerate(zip(pos, phases, strict=True))])
        sink_f.write({"frame": n, "time_s": t, "mode": "screen", "position": "A1",
                      "objective": "10x", "channel": "FITC", "pixel_size_um": 0.645,
                      "n_cells": cells, "latency_ms": 150 + rng.normal(0, 10),
                      "dataset": "screening_1", "axes": axes})
        trig_frame = n
        n += 1
        t_screen += 1
        if t_screen % trigger_every or n >= frames:
            continue
        n_trig += 1
        y, x = pos[0]
        sink_d.write({"frame": trig_frame, "time_s": t, "position": "A1", "mode": "screen",
                      "event": "trigger", "trigger": "metaphase_zoom", "followup": n_trig,
                      "cells": [{"y_px": y, "x_px": x, "x_um": 1.0, "y_um": 2.0, "track": 0,
                                 "phase": "metaphase", "confidence": 0.93}],
                      "actions": [{"type": "centre_on_cell", "objective": "60x"},
                                  {"type": "change_interval", "interval_s": 0.5},
                                  {"type": "return_to_screening"}],
                      "target": {"objective": "60x", "x_um": 1.0, "y_um": 2.0,
                                 "cell": {"y_px": y, "x_px": x}},
                      "refused": None, "latency_ms": 160.0})
        part = f"followup_{n_trig:03d}/02_change_interval"
        fds = NDTiffDataset(str(folder / part), writable=True)
        fds.initialize({"PixelSize_um": 0.1075, "Followup": n_trig, "Action": "change_interval"})
        for follow_t in range(followup_frames):
            if n >= frames:
                break
            t += 0.5
            faxes = {"time": follow_t, "channel": "FITC"}
            fds.put_image(faxes, follow_img, {"ElapsedTime-ms": t * 1000,
                                              "PixelSize_um": 0.1075})
            sink_f.write({"frame": n, "time_s": t, "mode": "follow", "position": "A1",
                          "followup": n_trig, "objective": "60x", "channel": "FITC",
                          "pixel_size_um": 0.1075, "n_cells": 0, "latency_ms": 20.0,
                          "dataset": part, "axes": faxes})
            n += 1
        fds.finish()
        fds.close()
        sink_d.write({"frame": n - 1, "time_s": t, "position": "A1", "mode": "follow",
                      "event": "return", "trigger": "metaphase_zoom", "followup": n_trig})
    for sink in (sink_c, sink_d, sink_f):
        sink.close()
    ds.finish()
    ds.close()
    write_json_atomic(folder / "run.json", {
        "protocol_file": "synthetic", "microscope": "simulated", "simulated": True,
        "model": {"name": "synthetic", "classes": list(CLASSES)},
        "summary": {"status": "completed", "frames": n, "screening_frames": t_screen,
                    "followup_frames": n - t_screen, "triggers_fired": n_trig,
                    "duration_s": t, "latency_ms": {"median": 150.0}},
    })
    return {"frames": n, "screening_frames": t_screen, "triggers": n_trig,
            "cell_rows": t_screen * cells}


def main() -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=None,
                   help="time the report of this run folder (a new folder: the synthetic run is "
                        "written there and kept)")
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--sensor-px", type=int, default=1024)
    p.add_argument("--cells", type=int, default=250, help="nuclei per screening frame")
    p.add_argument("--trigger-every", type=int, default=20, help="screening frames per trigger")
    p.add_argument("--followup-frames", type=int, default=12)
    args = p.parse_args()
    frames = 100 if args.quick else args.frames
    if args.quick:  # small frames, few nuclei: a smoke run of the script, not a figure
        args.sensor_px, args.cells = min(args.sensor_px, 256), min(args.cells, 50)
    repeats = args.repeats or (1 if args.quick else 3)
    tmp = None
    if args.run is not None and (args.run / "run.json").is_file():
        folder, built = args.run, {}
        src = str(args.run)
    elif args.run is not None:  # write the synthetic run there and keep it
        folder = args.run
        built = write_long_run(folder, frames=frames, sensor_px=args.sensor_px,
                               cells=args.cells, trigger_every=args.trigger_every,
                               followup_frames=args.followup_frames)
        src = f"synthetic, kept in {folder}"
    else:
        tmp = Path(tempfile.mkdtemp(prefix="report_speed_"))
        folder = tmp / "run"
        t0 = time.perf_counter()
        built = write_long_run(folder, frames=frames, sensor_px=args.sensor_px,
                               cells=args.cells, trigger_every=args.trigger_every,
                               followup_frames=args.followup_frames)
        built["write_s"] = round(time.perf_counter() - t0, 1)
        src = "synthetic"
    report = Report("report_speed", "smartscope report on a long run: time and report size",
                    settings={"run": src, "frames": frames, "sensor_px": args.sensor_px,
                              "cells": args.cells, "trigger_every": args.trigger_every,
                              "followup_frames": args.followup_frames, "repeats": repeats})
    try:
        from smartscope.report import load_run, write_report

        t0, c0 = time.perf_counter(), time.process_time()
        path = write_report(folder)
        cold_s, cold_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        c0 = time.process_time()
        warm = measure(lambda: write_report(folder), repeats=repeats, warmup=0, scale=1.0)
        warm_cpu_s = (time.process_time() - c0) / repeats
        load = measure(lambda: load_run(folder), repeats=repeats, warmup=0, scale=1.0)
        rec = load_run(folder)
        size_kb = path.stat().st_size / 1024
        page = path.read_text()
        triggers = sum(1 for d in rec.decisions if d.get("event") == "trigger")
        report.results = {
            "run": built, "cold_s": round(cold_s, 3), "warm_s": warm.to_dict(),
            "cold_cpu_s": round(cold_cpu_s, 3), "warm_cpu_s": round(warm_cpu_s, 3),
            "load_records_s": load.to_dict(), "report_kb": round(size_kb, 1),
            "images_embedded": page.count("data:image/png;base64,"), "triggers": triggers,
            "frames": len(rec.frames), "cell_rows": rec.cell_rows,
        }
        report.rows = [{"frames": len(rec.frames), "cell rows": rec.cell_rows,
                        "triggers": triggers, "cold s": round(cold_s, 2),
                        "cold CPU s": round(cold_cpu_s, 2),
                        "warm s (median)": round(warm.median, 2),
                        "warm CPU s": round(warm_cpu_s, 2),
                        "of which records s": round(load.median, 2),
                        "report kB": round(size_kb), "kB per trigger":
                            round(size_kb / triggers, 1) if triggers else "-"}]
        report.notes.append(f"report.html {size_kb:.0f} kB with "
                            f"{report.results['images_embedded']} embedded PNGs")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report.print()
    report.write(args.json)
    if args.json is None:
        print(json.dumps(report.results["run"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
