"""Read a run folder back: ``run.json``, ``decisions.jsonl``, ``cells.csv`` and ``frames.csv``.

Works on a finished run, on an interrupted one (a torn last line is skipped and counted), on a
run of an earlier version (columns and files it lacks are left out) and on the folder of a hook
used from someone's own Pycro-Manager script (no ``run.json``). Only a folder holding none of the
records is refused.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartscope.errors import RunFolderError

log = logging.getLogger(__name__)

RUN_FILES = ("run.json", "decisions.jsonl", "cells.csv", "frames.csv")


@dataclass
class FrameInfo:
    """One image the hook decided on (from ``frames.csv``, else pieced together from the cells)."""

    frame: int
    time_s: float
    mode: str = ""
    position: str = ""
    followup: int | None = None
    objective: str = ""
    pixel_size_um: float | None = None
    latency_ms: float | None = None
    dataset: str = ""
    axes: dict[str, Any] | None = None


@dataclass
class FollowCell:
    """A classified nucleus of a follow-up frame (pixels)."""

    y: float
    x: float
    phase: str
    confidence: float


@dataclass
class RunRecords:
    """What a run folder holds, in the form the report needs.

    Attributes
    ----------
    folder : Path
    run : dict
        ``run.json`` (empty when absent).
    decisions : list of dict
        ``decisions.jsonl`` records in order.
    classes : list of str
        Class names (from ``run.json``'s model, else the ``p_<class>`` columns of cells.csv).
    phase_counts : dict
        Screening frame index -> {phase: number of nuclei}.
    frames : dict
        Frame index -> ``FrameInfo`` (every frame from ``frames.csv``; else the frames that
        had cells or decisions).
    follow_cells : dict
        Follow-up frame index -> its classified nuclei.
    has_frames_csv, has_track : bool
        Whether the run wrote ``frames.csv`` / a ``track`` column in ``cells.csv``.
    cell_rows : int
    skipped_lines : int
        Unreadable lines (a torn last line of an interrupted run).
    """

    folder: Path
    run: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    phase_counts: dict[int, Counter[str]] = field(default_factory=dict)
    frames: dict[int, FrameInfo] = field(default_factory=dict)
    follow_cells: dict[int, list[FollowCell]] = field(default_factory=dict)
    has_frames_csv: bool = False
    has_track: bool = False
    cell_rows: int = 0
    skipped_lines: int = 0

    @property
    def status(self) -> str:
        """The run's final status; ``running`` in run.json means it ended without closing."""
        status = str(self.run.get("summary", {}).get("status") or "")
        if status == "running":
            return "ended abruptly (run.json never closed)"
        if status:
            return status
        if any(d.get("event") == "interrupted" for d in self.decisions):
            return "interrupted"
        if any(d.get("event") in ("screening_done", "stop") for d in self.decisions):
            return "completed"
        return "unknown (no run.json)"


def load_run(folder: str | Path) -> RunRecords:
    """Read the records of a run folder.

    Raises
    ------
    RunFolderError
        If ``folder`` does not exist or holds none of run.json, decisions.jsonl, cells.csv.
    """
    path = Path(folder)
    if not path.is_dir():
        raise RunFolderError(f"{path}: no such folder; give the folder of a smartscope run")
    if not any((path / name).is_file() for name in RUN_FILES):
        raise RunFolderError(
            f"{path}: not a smartscope run (none of {', '.join(RUN_FILES)} in it); give the "
            "folder that 'smartscope run --out' or a hook's out_dir wrote"
        )
    rec = RunRecords(folder=path)
    if (path / "run.json").is_file():
        try:
            rec.run = _run_json(path / "run.json")
        except (OSError, ValueError) as e:
            log.warning("%s: unreadable run.json (%s); reporting without it", path, e)
            rec.skipped_lines += 1
    rec.classes = [str(c) for c in rec.run.get("model", {}).get("classes", []) or []]
    _read_decisions(rec)
    _read_frames(rec)
    _read_cells(rec)
    return rec


def _read_decisions(rec: RunRecords) -> None:
    p = rec.folder / "decisions.jsonl"
    if not p.is_file():
        return
    with p.open(errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except ValueError:
                rec.skipped_lines += 1
                continue
            if isinstance(d, dict):
                rec.decisions.append(d)


def _read_frames(rec: RunRecords) -> None:
    p = rec.folder / "frames.csv"
    if not p.is_file():
        return
    rec.has_frames_csv = True
    with p.open(newline="", errors="replace") as f:
        for row in csv.DictReader(f):
            try:
                info = FrameInfo(
                    frame=int(row["frame"]), time_s=float(row["time_s"]), mode=row["mode"],
                    position=row.get("position", ""), followup=_opt_int(row.get("followup")),
                    objective=row.get("objective", ""),
                    pixel_size_um=_opt_float(row.get("pixel_size_um")),
                    latency_ms=_opt_float(row.get("latency_ms")),
                    dataset=row.get("dataset", "") or "",
                    axes=json.loads(row["axes"]) if row.get("axes") else None,
                )
            except (KeyError, TypeError, ValueError):
                rec.skipped_lines += 1
                continue
            rec.frames[info.frame] = info


def _read_cells(rec: RunRecords) -> None:
    p = rec.folder / "cells.csv"
    if not p.is_file():
        return
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    with p.open(newline="", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        col = {name: i for i, name in enumerate(header)}
        if not rec.classes:
            rec.classes = [h[2:] for h in header if h.startswith("p_")]
        rec.has_track = "track" in col
        need = ("frame", "time_s", "mode", "phase")
        if any(n not in col for n in need):
            log.warning("%s: cells.csv lacks one of %s; no phase timeline", p, need)
            return
        i_frame, i_time, i_mode, i_phase = (col[n] for n in need)
        i_y, i_x, i_conf = col.get("y"), col.get("x"), col.get("confidence")
        i_pos, i_fu, i_obj, i_ps = (col.get(n) for n in
                                    ("position", "followup", "objective", "pixel_size_um"))
        width = len(header)
        for row in reader:
            if len(row) != width:
                rec.skipped_lines += 1
                continue
            try:
                frame = int(row[i_frame])
            except ValueError:
                rec.skipped_lines += 1
                continue
            rec.cell_rows += 1
            mode = row[i_mode]
            if mode == "follow":
                if i_y is not None and i_x is not None and i_conf is not None:
                    rec.follow_cells.setdefault(frame, []).append(FollowCell(
                        float(row[i_y]), float(row[i_x]), row[i_phase],
                        _opt_float(row[i_conf]) or 0.0))
            else:
                counts[frame][row[i_phase]] += 1
            if frame not in rec.frames:
                rec.frames[frame] = FrameInfo(
                    frame=frame, time_s=float(row[i_time]), mode=mode,
                    position=row[i_pos] if i_pos is not None else "",
                    followup=_opt_int(row[i_fu]) if i_fu is not None else None,
                    objective=row[i_obj] if i_obj is not None else "",
                    pixel_size_um=_opt_float(row[i_ps]) if i_ps is not None else None,
                )
    rec.phase_counts = dict(counts)


def _opt_float(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _opt_int(v: Any) -> int | None:
    f = _opt_float(v)
    return int(f) if f is not None else None


def _run_json(path: Path) -> dict[str, Any]:
    """``run.json`` as a mapping; a section of the wrong kind (edited by hand, another tool's
    file) is left out with a warning rather than failing the whole report.

    Raises
    ------
    ValueError
        If the file is not JSON or not an object.
    """
    run = json.loads(path.read_text())
    if not isinstance(run, dict):
        raise ValueError(f"holds a {type(run).__name__}, not an object")
    for key in ("summary", "model", "protocol", "scope_info", "packages"):
        if key in run and not isinstance(run[key], dict):
            log.warning("%s: field '%s' is a %s, not an object; left out of the report", path,
                        key, type(run[key]).__name__)
            del run[key]
    return run
