"""Run outputs written while the acquisition runs: ``cells.csv``, ``decisions.jsonl`` and
``run.json``. Every write is flushed, so a run that ends abruptly keeps everything up to then."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from smartscope.errors import OutputError

log = logging.getLogger(__name__)

CELL_COLUMNS = (
    "frame", "time_s", "position", "mode", "followup", "objective", "channel", "pixel_size_um",
    "y", "x", "x_um", "y_um", "area_um2", "phase", "confidence", "track", "parent_track",
    "dataset", "axes",
)

FRAME_COLUMNS = (
    "frame", "time_s", "mode", "position", "followup", "objective", "channel", "pixel_size_um",
    "n_cells", "latency_ms", "over_budget", "dataset", "axes",
)

_PACKAGES = ("smartscope", "pycromanager", "pymmcore-plus", "pymmcore", "mmpycorex",
             "ai-edge-litert", "numpy", "scikit-image", "pydantic")


class _Sink:
    """A file written row by row and flushed after each write. A write that fails (a full disk,
    a folder gone) is an ``OutputError`` naming the file; closing never raises, so the error that
    ended a run is the one reported and the rows written before are kept."""

    path: Path
    _f: IO[str]

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
            self._f.flush()
        except OSError as e:
            raise OutputError(
                f"{self.path}: cannot be written ({e.strerror or e}); the rows before are kept; "
                "free space on its disk (or check the folder), then run again"
            ) from e

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError as e:  # what was flushed before is on disk
                log.error("%s: the last rows could not be written (%s)", self.path,
                          e.strerror or e)


class CellsCsv(_Sink):
    """``cells.csv``: one row per classified nucleus, class probabilities as ``p_<class>``;
    ``dataset`` and ``axes`` (JSON) say where its image lies, as in ``frames.csv``."""

    def __init__(self, path: Path, classes: Sequence[str]) -> None:
        self.path = Path(path)
        self.classes = tuple(classes)
        self._f = self.path.open("w", newline="")
        self._w = csv.writer(self._f)
        with self._writing():
            self._w.writerow([*CELL_COLUMNS, *(f"p_{c}" for c in self.classes)])
        self.rows = 0

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self._writing():
            for row in rows:
                probs = row.get("probabilities")
                if probs is None:
                    probs = [""] * len(self.classes)
                elif isinstance(probs, Mapping):  # {class: probability}
                    probs = [probs.get(c, "") for c in self.classes]
                probs = [float(p) if p != "" else p for p in probs]
                values = [_fmt(_cell(row.get(c, ""))) for c in CELL_COLUMNS]
                self._w.writerow(values + [_fmt(p) for p in probs])
        self.rows += len(rows)


class FramesCsv(_Sink):
    """``frames.csv``: one row per image the hook decided on: where the image lies (data set
    folder relative to the run folder, and its axes as JSON), its pixel size, how many nuclei
    were classified and the hook's latency."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._f = self.path.open("w", newline="")
        self._w = csv.writer(self._f)
        with self._writing():
            self._w.writerow(FRAME_COLUMNS)
        self.rows = 0

    def write(self, row: Mapping[str, Any]) -> None:
        values = [row.get(c, "") for c in FRAME_COLUMNS]
        values[-1] = json.dumps(values[-1], sort_keys=True) if values[-1] != "" else ""
        with self._writing():
            self._w.writerow([_fmt(v) for v in values])
        self.rows += 1


class DecisionsJsonl(_Sink):
    """``decisions.jsonl``: one JSON object per decision, flushed as written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._f = self.path.open("w")
        self.count = 0

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, default=_json_default) + "\n"
        with self._writing():
            self._f.write(line)
        self.count += 1


def _cell(v: Any) -> Any:
    """A mapping (the ``axes`` column) as JSON; anything else as it is."""
    return json.dumps(dict(v), sort_keys=True) if isinstance(v, Mapping) else v


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run depends on."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file, or None when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so the file is never half-written."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)
