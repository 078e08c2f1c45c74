"""Shared helpers of the benchmark scripts: machine and package facts, timing, tables, JSON.

Every benchmark in this folder:

- states what it measures (``Report.what``),
- warms up, then repeats, and reports the median and the spread (p5-p95, min, max) of the
  repeats (``measure``, ``summarise``),
- records the machine (CPU model, cores, vector extensions, load average) and the package
  versions (``machine_info``, ``package_versions``), since a figure means nothing without them,
- prints a table and writes a JSON file (``Report.print``, ``Report.write``).

Import it from a script in this folder as ``from common import ...`` (the scripts put their own
folder on ``sys.path``), or from elsewhere as ``benchmarks.common``. It never imports TensorFlow:
``build_random_bundle`` runs the exporter in a child process.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "hela_phases"
SHIPPED_BUNDLE = REPO / "models" / "hela_h2b_5class"

PACKAGES = (
    "smartscope", "numpy", "scipy", "scikit-image", "ai-edge-litert", "tensorflow-cpu",
    "tensorflow", "keras", "pycromanager", "pymmcore-plus", "pymmcore", "psutil",
)
_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


# ----------------------------------------------------------------------------- machine & versions


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The vector extensions the CPU reports (AVX, AVX2, FMA, AVX-512, VNNI, AMX)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in _FLAGS if f in have]
    except OSError:
        pass
    return []


def machine_info() -> dict[str, Any]:
    """CPU model, logical/physical cores, vector extensions, memory, OS, Python, load average."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": None,
        "cpu_flags": cpu_flags(),
        "memory_gb": None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_1_5_15": None,
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    return info


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape the figures (missing ones are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The repository's commit (with ``+dirty`` when the working tree differs), or None."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                             capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, text=True, capture_output=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ("+dirty" if dirty.strip() else "")) or None


def machine_line(info: Mapping[str, Any] | None = None) -> str:
    """One line for a table's caption: CPU, cores, flags, load."""
    m = info or machine_info()
    load = m.get("load_average_1_5_15")
    return (f"{m['cpu']}, {m['logical_cores']} logical cores, {'/'.join(m['cpu_flags']) or '-'}"
            + (f", load {load[0]:.1f}" if load else ""))


# ----------------------------------------------------------------------------- timing


@dataclass
class Stats:
    """Summary of repeated measurements (all values in the unit of the samples)."""

    n: int
    median: float
    p5: float
    p95: float
    min: float
    max: float
    mean: float
    unit: str = "ms"

    def to_dict(self, digits: int = 3) -> dict[str, Any]:
        return {k: (round(v, digits) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}

    def brief(self, digits: int = 1) -> str:
        """``median [p5-p95]``."""
        return f"{self.median:.{digits}f} [{self.p5:.{digits}f}-{self.p95:.{digits}f}]"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation, like ``numpy.percentile``)."""
    xs = sorted(values)
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarise(samples: Sequence[float], unit: str = "ms") -> Stats:
    """Median, p5, p95, min, max and mean of samples (NaN for an empty list)."""
    xs = [float(v) for v in samples]
    if not xs:
        nan = math.nan
        return Stats(0, nan, nan, nan, nan, nan, nan, unit)
    return Stats(len(xs), statistics.median(xs), percentile(xs, 5), percentile(xs, 95),
                 min(xs), max(xs), statistics.fmean(xs), unit)


def measure(fn: Callable[[], Any], *, repeats: int, warmup: int = 1,
            scale: float = 1e3, per: float = 1.0) -> Stats:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls.

    Parameters
    ----------
    scale : unit of the result per second (1e3: milliseconds)
    per : divide each sample by this (e.g. the number of cells, for a per-cell time)
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * scale / per)
    return summarise(samples, "ms" if scale == 1e3 else "s" if scale == 1 else f"1/{scale}s")


# ----------------------------------------------------------------------------- reporting


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text table (Markdown pipe syntax, so it pastes into a README)."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"
            for row in cells]
    return "\n".join([line, rule, *body])


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    """``ok`` / ``MISSED`` against a target."""
    if math.isnan(value):
        return "n/a"
    ok = value <= target if lower_is_better else value >= target
    return "ok" if ok else "MISSED"


@dataclass
class Report:
    """What a benchmark writes: what it measured, settings, results, table rows, machine."""

    benchmark: str
    what: str
    settings: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: str = field(
        default_factory=lambda: _dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    def payload(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark, "what": self.what, "started": self.started,
            "duration_s": round(time.perf_counter() - self._t0, 1),
            "machine": machine_info(), "packages": package_versions(), "commit": git_commit(),
            "settings": self.settings, "results": _jsonable(self.results), "table": self.rows,
            "notes": self.notes,
        }

    def print(self, file: Any = None) -> None:
        """The table with its caption (what, machine, versions) on stdout."""
        out = file or sys.stdout
        print(f"\n## {self.benchmark}: {self.what}", file=out)
        print(f"machine: {machine_line()}", file=out)
        v = package_versions()
        keys = ("numpy", "scikit-image", "ai-edge-litert", "tensorflow-cpu", "tensorflow",
                "pycromanager", "pymmcore-plus")
        print("versions: " + ", ".join(f"{k} {v[k]}" for k in keys if k in v), file=out)
        if self.settings:
            print("settings: " + ", ".join(f"{k}={_cell(s)}" for k, s in self.settings.items()),
                  file=out)
        print(format_table(self.rows), file=out)
        for note in self.notes:
            print(f"note: {note}", file=out)

    def write(self, path: str | Path | None) -> Path | None:
        """Write the JSON payload to ``path`` (parents created); None writes nothing."""
        if path is None:
            return None
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.payload(), indent=2) + "\n")
        return p


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Stats):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def arg_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick``, ``--json``, ``--repeats``, ``--warmup``."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small sizes, few repeats (CI); figures are not comparable")
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default per script)")
    p.add_argument("--warmup", type=int, default=None, help="untimed warm-up runs")
    return p


# ----------------------------------------------------------------------------- model bundles


def shipped_bundle() -> Path | None:
    """The shipped model bundle when the repository has it."""
    b = SHIPPED_BUNDLE
    if (b / "model.tflite").is_file() and (b / "model_card.json").is_file():
        return b
    return None


_BUILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    out, size, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[4])
    classes = sys.argv[3].split(",")
    import keras
    from smartscope.train.models import SIZES, build_discriminator, classifier_head
    from smartscope.train.export import convert_int8
    from smartscope.classify import MODEL_FILE, InputSpec, ModelCard, Quantisation
    from smartscope.classify import interpreter_class
    from smartscope.vision.preprocess import CROP_UM, INPUT_SIZE, NORMALISATION, normalise
    keras.utils.set_random_seed(seed)
    model = classifier_head(build_discriminator(len(classes), SIZES[size]))
    pool = Path(sys.argv[5]) if len(sys.argv) > 5 else None
    if pool is not None and pool.is_file():
        rep = normalise(np.load(pool)["crops"][:200])[..., None]
    else:
        rng = np.random.default_rng(seed)
        rep = np.clip(rng.normal(-0.6, 0.4, (64, INPUT_SIZE, INPUT_SIZE, 1)), -1, 1)
    tflite = convert_int8(model, rep.astype(np.float32), seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(tflite)
    interp = interpreter_class()(model_content=tflite)
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    quant = Quantisation(
        input_dtype=np.dtype(i["dtype"]).name, input_scale=float(i["quantization"][0]),
        input_zero_point=int(i["quantization"][1]), output_dtype=np.dtype(o["dtype"]).name,
        output_scale=float(o["quantization"][0]), output_zero_point=int(o["quantization"][1]))
    ModelCard(name=out.name, classes=tuple(classes), method="untrained (benchmark)", seed=seed,
              input=InputSpec(size_px=INPUT_SIZE, crop_um=CROP_UM, normalisation=NORMALISATION),
              quantisation=quant).save(out)
""")

DEFAULT_CLASSES = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")


def build_random_bundle(folder: Path | None = None, *, size: str = "fast",
                        classes: Sequence[str] = DEFAULT_CLASSES, seed: int = 0) -> Path:
    """An int8 bundle of an untrained discriminator of a named size (default: the shipped one's).

    Same layers, same int8 kernels, so the same inference time as a trained one (weights do not
    change the cost). Built once in a child process (TensorFlow stays out of the caller) and cached
    in the temp folder.
    """
    from smartscope.vision.preprocess import NORMALISATION

    folder = folder or (Path(tempfile.gettempdir()) / "smartscope-benchmarks"
                        / f"{size}_{len(classes)}cls_seed{seed}_{NORMALISATION}")
    if (folder / "model.tflite").is_file() and (folder / "model_card.json").is_file():
        return folder
    cmd = [sys.executable, "-c", _BUILD, str(folder), size, ",".join(classes), str(seed),
           str(DATA / "unlabelled.npz")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"building the benchmark bundle failed:\n{proc.stderr[-2000:]}")
    return folder


def benchmark_bundle(explicit: Path | None = None) -> tuple[Path, str]:
    """The bundle to time: ``explicit``, else the shipped one, else an untrained one of its size.

    Returns the folder and a short description for the report.
    """
    if explicit is not None:
        return Path(explicit), f"given bundle {Path(explicit).name}"
    shipped = shipped_bundle()
    if shipped is not None:
        return shipped, f"shipped bundle {shipped.name}"
    return build_random_bundle(), ("untrained discriminator of the shipped size (32-128-128-256), "
                                   "int8 (no shipped bundle)")
