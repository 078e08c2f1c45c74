"""What a run records: one ``cells.csv`` row per classified nucleus and one ``decisions.jsonl``
record per decision (also kept in memory and logged at INFO); the hook's ``Progress``; the run
folder's ``report.html`` (``write_report_quietly``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from smartscope.acquire.datasets import Placement
from smartscope.acquire.sinks import CellsCsv, DecisionsJsonl, FramesCsv
from smartscope.classify.cells import Cell
from smartscope.decide import Decision, FrameRequest
from smartscope.errors import OutputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """What the hook has done so far (passed to the progress callback after every frame)."""

    frames: int
    screening_frames: int
    followup_frames: int
    triggers_fired: int
    errors: int
    elapsed_s: float
    last_latency_ms: float
    mode: Literal["screening", "follow-up"]
    last_decision: str = ""
    over_budget: int = 0
    """Images whose hook latency exceeded the latency budget."""


class Recorder:
    """Writes cell rows, image rows and decision records; any sink may be None (not written).

    Parameters
    ----------
    cells, decisions, frames : sinks, optional
        Cells come placed on the stage (``Cell.x_um``, ``y_um``: the hook computes them once).
    folder : path, optional
        The run folder the sinks write into (where the report goes).

    Attributes
    ----------
    last_decision : str
        The latest decision in one short line (empty before the first).
    """

    def __init__(
        self,
        cells: CellsCsv | None = None,
        decisions: DecisionsJsonl | None = None,
        frames: FramesCsv | None = None,
        folder: str | Path | None = None,
    ) -> None:
        self.cells = cells
        self.decisions = decisions
        self.frames = frames
        self.folder = Path(folder) if folder is not None else None
        self.last_decision = ""
        self.decision_log: list[dict[str, Any]] = []

    @classmethod
    def in_folder(cls, folder: str | Path, classes: Sequence[str]) -> Recorder:
        """``cells.csv``, ``frames.csv`` and ``decisions.jsonl`` in ``folder`` (created)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        return cls(CellsCsv(out / "cells.csv", classes), DecisionsJsonl(out / "decisions.jsonl"),
                   frames=FramesCsv(out / "frames.csv"), folder=out)

    def cell_row(self, c: Cell, index: int, time_s: float, req: FrameRequest,
                 ps: float) -> dict[str, Any]:
        """The ``cells.csv`` row of a classified nucleus placed on the stage (``Cell.x_um``)."""
        return {
            "frame": index, "time_s": round(time_s, 4), "position": req.position_name,
            "mode": req.mode, "followup": req.followup if req.followup is not None else "",
            "objective": req.objective, "channel": req.channel, "pixel_size_um": ps,
            "y": c.y, "x": c.x, "x_um": c.x_um, "y_um": c.y_um,
            "area_um2": c.area_um2, "phase": c.phase, "confidence": c.confidence,
            "probabilities": c.probabilities,
        }

    def frame(self, index: int, time_s: float, req: FrameRequest,
              decisions: Sequence[Decision], rows: Sequence[Mapping[str, Any]],
              latency_ms: float, pixel_size_um: float | None = None,
              over_budget: bool | None = None, placement: Placement | None = None) -> None:
        """Record one frame's image row, cells and decisions, each naming where the image lies
        (``placement``: data set folder relative to the run folder, and axes; default: the
        request's event axes in an unknown data set); a write failure is logged, never raised.
        """
        where = placement if placement is not None else Placement("", req.axes())
        try:
            if self.frames is not None:
                self.frames.write({
                    "frame": index, "time_s": round(time_s, 4), "mode": req.mode,
                    "position": req.position_name,
                    "followup": req.followup if req.followup is not None else "",
                    "objective": req.objective, "channel": req.channel,
                    "pixel_size_um": pixel_size_um if pixel_size_um is not None else "",
                    "n_cells": len(rows) if req.classify else "",
                    "latency_ms": round(latency_ms, 2),
                    "over_budget": "" if over_budget is None else int(over_budget),
                    "dataset": where.dataset,
                    "axes": where.axes,
                })
            if self.cells is not None and rows:
                self.cells.write([{**r, "dataset": where.dataset, "axes": where.axes}
                                  for r in rows])
            for d in decisions:
                self.note({"frame": index, "time_s": round(time_s, 4),
                           "position": req.position_name, "mode": req.mode, **d.to_record(),
                           "image": where.record(),
                           "latency_ms": round(latency_ms, 2)})
        except Exception:
            log.exception("could not write run records for frame %d", index)

    def note(self, record: Mapping[str, Any]) -> None:
        """Append one decision record."""
        rec = dict(record)
        self.decision_log.append(rec)
        if rec.get("event") not in (None, "screening_done"):
            self.last_decision = headline(rec)
        if rec.get("event") != "error":  # errors are logged with their traceback where caught
            log.info("decision: %s", summary(rec))
        if self.decisions is not None:
            self.decisions.write(rec)

    def close(self) -> None:
        """Close the files (idempotent)."""
        for sink in (self.cells, self.decisions, self.frames):
            if sink is not None:
                sink.close()


def summary(rec: Mapping[str, Any]) -> str:
    """A decision record in one short line."""
    keys = ("event", "frame", "time_s", "position", "trigger", "reason")
    return " ".join(f"{k}={rec[k]}" for k in keys if rec.get(k) is not None)


def headline(rec: Mapping[str, Any]) -> str:
    """A decision for the progress line: what, which trigger, where, the cell's phase."""
    event = str(rec.get("event", ""))
    words = [event.replace("_", " ")]
    if rec.get("trigger"):
        words.append(str(rec["trigger"]))
    if rec.get("position") is not None:
        words.append(f"at {rec['position']}")
    cells = rec.get("cells") or []
    if event == "trigger" and cells:
        c = cells[0]
        ev = rec.get("evidence") or {}
        if "mean" in ev:  # evidence: mean: the mean over the frames made it count
            words.append(f"({c.get('phase')} mean {float(ev['mean']):.2f} over "
                         f"{ev.get('frames')} frames)")
        else:
            words.append(f"({c.get('phase')} {float(c.get('confidence', 0)):.2f})")
        if rec.get("refused"):
            words.append("refused")
    why = rec.get("reason") or rec.get("error")
    if why and event != "trigger":
        words.append(f"({str(why)[:60]})")
    if rec.get("time_s") is not None:
        words.append(f"t={float(rec['time_s']):.1f} s")
    return " ".join(words)


def write_report_quietly(folder: str | Path) -> Path | None:
    """``report.html`` in a run folder; a failure is logged (with its traceback), never raised,
    so closing a run never loses what it acquired."""
    from smartscope.report import write_report

    try:
        return write_report(folder)
    except OutputError as e:  # a full disk, a read-only folder: the message says it all
        log.error("could not write the run report: %s", e)
        return None
    except Exception:
        log.exception("could not write the run report in %s", folder)
        return None
