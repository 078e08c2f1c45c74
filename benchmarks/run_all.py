"""Run every benchmark (quick smoke mode by default), print one summary table, write one JSON.

Each benchmark runs in its own process (so TensorFlow, imported by some, never leaks into the
acquisition-side ones) with ``--json``; this script gathers those files, prints the headline
figures of each and writes them all into one JSON file.

    python benchmarks/run_all.py                          # smoke run (CI): small sizes, minutes
    python benchmarks/run_all.py --full --json all.json   # the reported figures (long)
    python benchmarks/run_all.py --only hook_latency frame_speed
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Report, arg_parser  # noqa: E402

HERE = Path(__file__).resolve().parent


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _fmt(v: Any, unit: str = "", digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}{unit}"
    return f"{v}{unit}"


def _frame_speed(r: dict) -> str:
    res = r.get("results", {})
    frames = [v for k, v in res.items() if k.startswith("frame ") and k.endswith(" 1t")]
    frame = _get(frames[0], "total", "median") if frames else None
    return (f"int8 1t {_fmt(_get(res, 'litert_batched_1t_ms_per_cell', 'median'), ' ms/cell')}, "
            f"2t {_fmt(_get(res, 'litert_batched_2t_ms_per_cell', 'median'), ' ms/cell')}; "
            f"frame {_fmt(frame, ' ms', 4)}; Keras/cell "
            f"{_fmt(_get(res, 'keras_predict_single_ms_per_cell', 'median'), ' ms')}")


def _detection_quality(r: dict) -> str:
    inner = r.get("inner", {})
    return (f"precision {_fmt(inner.get('precision'))}, recall {_fmt(inner.get('recall'))}, "
            f"detect {_fmt(r.get('detect_ms_median'), ' ms', 4)}")


def _hook_latency(r: dict) -> str:
    res = r.get("results", {})
    parts = []
    for key, v in res.items():
        lat = v.get("latency_ms", {})
        parts.append(f"{key} p50 {_fmt(lat.get('median'), '', 4)} / "
                     f"p95 {_fmt(lat.get('p95'), ' ms', 4)}")
    return "; ".join(parts) or "-"


def _training_time(r: dict) -> str:
    res = r.get("results", {})
    return (f"wall {_fmt(_get(res, 'wall_min', 'median'), ' min')}, loop "
            f"{_fmt(_get(res, 'training_loop_min', 'median'), ' min')}")


def _history(r: dict) -> str:
    return "; ".join(f"{row.get('revision')}: {row.get('total ms (CPU)')} ms"
                     for row in r.get("table", [])) or "-"


def _soak(r: dict) -> str:
    res = r.get("results", {})
    return (f"{res.get('frames')} images, RSS growth {_fmt(res.get('rss_growth_mb'), ' MB')}, "
            f"latency steady {res.get('latency_steady')}, errors {res.get('errors')}")


@dataclass
class Bench:
    """One benchmark script: its file, the arguments of each mode and a headline extractor."""

    name: str
    quick_args: tuple[str, ...] = ("--quick",)
    full_args: tuple[str, ...] = ()
    headline: Callable[[dict], str] = field(default=lambda r: "see JSON")
    #: exit status meaning "input data not available here" (reported as skipped)
    skip_rc: int | None = None
    #: exit status meaning "ran, but missed its own target" (the JSON is still read)
    verdict_rc: int | None = None

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.py"


def _event_capture(r: dict) -> str:
    res = r.get("results", {})
    parts = [f"{k}: precision {_fmt(v.get('followup_precision'))}, recall {_fmt(v.get('recall'))}"
             for k, v in res.items() if k.endswith("tracking+confirm") and isinstance(v, dict)]
    return "; ".join(parts) or "no tracking+confirm run"


def _report_speed(r: dict) -> str:
    res = r.get("results", {})
    return (f"{res.get('frames')} images, {res.get('triggers')} triggers: "
            f"{_fmt(_get(res, 'warm_s', 'median'), ' s')} (cold {_fmt(res.get('cold_s'), ' s')}), "
            f"{_fmt(res.get('report_kb'), ' kB')}")


BENCHES = (
    Bench("frame_speed", headline=_frame_speed),
    Bench("detection_quality", quick_args=(), headline=_detection_quality, skip_rc=2),
    Bench("hook_latency", headline=_hook_latency),
    Bench("training_time", headline=_training_time),
    Bench("soak", quick_args=("--quick",), full_args=("--frames", "1000"), headline=_soak,
          verdict_rc=1),
    # the vision package before its speed work (ec1d2ab) and now
    Bench("history", quick_args=("--quick", "WORKTREE"), full_args=("ec1d2ab", "WORKTREE"),
          headline=_history),
    Bench("event_capture", headline=_event_capture),
    Bench("report_speed", headline=_report_speed),
)


def run_one(b: Bench, full: bool, out: Path, timeout_s: float) -> dict[str, Any]:
    """Run one benchmark script; returns status, seconds, its JSON and the headline."""
    if not b.path.is_file():
        return {"name": b.name, "status": "absent", "seconds": 0.0, "headline": "-"}
    cmd = [sys.executable, str(b.path), *(b.full_args if full else b.quick_args),
           "--json", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"name": b.name, "status": "timeout", "seconds": time.perf_counter() - t0,
                "headline": f"> {timeout_s:.0f} s"}
    seconds = time.perf_counter() - t0
    entry: dict[str, Any] = {"name": b.name, "seconds": round(seconds, 1),
                             "command": " ".join(["python", f"benchmarks/{b.path.name}",
                                                  *cmd[2:-2]])}
    if b.skip_rc is not None and proc.returncode == b.skip_rc:
        entry.update(status="skipped", headline=(proc.stderr.strip().splitlines() or ["-"])[-1])
        return entry
    missed = b.verdict_rc is not None and proc.returncode == b.verdict_rc and out.is_file()
    if (proc.returncode != 0 and not missed) or not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        entry.update(status=f"failed ({proc.returncode})", headline=tail[0][:120],
                     stderr_tail=proc.stderr[-3000:])
        return entry
    result = json.loads(out.read_text())
    entry.update(status="ok (target missed)" if missed else "ok", result=result,
                 stdout=proc.stdout)
    try:
        entry["headline"] = b.headline(result)
    except Exception as e:  # a changed JSON layout must not hide the other results
        entry["headline"] = f"(headline unavailable: {type(e).__name__})"
    return entry


def main(argv: list[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="full runs instead of quick ones")
    p.add_argument("--only", nargs="+", default=None, help="benchmark names to run")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per benchmark (default: 600 quick, 3600 full)")
    p.add_argument("--verbose", "-v", action="store_true", help="echo each benchmark's table")
    args = p.parse_args(argv)
    if args.quick and args.full:
        p.error("give --quick or --full, not both")
    full = args.full
    timeout = args.timeout or (3600.0 if full else 600.0)
    chosen = [b for b in BENCHES if args.only is None or b.name in args.only]
    unknown = set(args.only or ()) - {b.name for b in BENCHES}
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    report = Report("run_all", f"every benchmark, {'full' if full else 'quick (smoke)'} mode",
                    settings={"mode": "full" if full else "quick"})
    failed = 0
    with tempfile.TemporaryDirectory(prefix="smartscope-bench-") as tmp:
        for b in chosen:
            entry = run_one(b, full, Path(tmp) / f"{b.name}.json", timeout)
            if args.verbose and entry.get("stdout"):
                print(entry["stdout"])
            failed += entry["status"].startswith(("failed", "timeout"))
            report.results[b.name] = {k: v for k, v in entry.items() if k != "stdout"}
            report.rows.append({"benchmark": b.name, "status": entry["status"],
                                "s": entry["seconds"], "headline": entry["headline"]})
            print(f"{b.name}: {entry['status']} in {entry['seconds']:.0f} s", file=sys.stderr)
    if not full:
        report.notes.append("quick mode: smoke run, small sizes; the figures are not the "
                            "reported ones (see benchmarks/README.md)")
    report.print()
    report.write(args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
