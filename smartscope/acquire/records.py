"""What a run records: one ``cells.csv`` row per classified nucleus and one ``decisions.jsonl``
record per decision (also kept in memory and logged at INFO)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smartscope.acquire.sinks import CellsCsv, DecisionsJsonl
from smartscope.decide import UPRIGHT, FrameRequest, pixel_to_stage
from smartscope.protocol import CameraOrientation

log = logging.getLogger(__name__)


class Recorder:
    """Writes cell rows and decision records; either sink may be None (not written).

    Parameters
    ----------
    cells, decisions : sinks, optional
    orientation : CameraOrientation
        To give each cell its stage coordinates.
    """

    def __init__(
        self,
        cells: CellsCsv | None = None,
        decisions: DecisionsJsonl | None = None,
        orientation: CameraOrientation = UPRIGHT,
    ) -> None:
        self.cells = cells
        self.decisions = decisions
        self.orientation = orientation
        self.decision_log: list[dict[str, Any]] = []

    @classmethod
    def in_folder(
        cls, folder: str | Path, classes: Sequence[str], orientation: CameraOrientation = UPRIGHT
    ) -> Recorder:
        """``cells.csv`` and ``decisions.jsonl`` in ``folder`` (created)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        return cls(CellsCsv(out / "cells.csv", classes), DecisionsJsonl(out / "decisions.jsonl"),
                   orientation)

    def cell_row(self, c: Any, index: int, time_s: float, req: FrameRequest, ps: float,
                 shape: tuple[int, int]) -> dict[str, Any]:
        """The ``cells.csv`` row of a classified nucleus ``c`` (y, x, phase, confidence, ...)."""
        x_um, y_um = pixel_to_stage(float(c.y), float(c.x), shape=shape, pixel_size_um=ps,
                                    stage_x_um=req.x_um, stage_y_um=req.y_um,
                                    orientation=self.orientation)
        return {
            "frame": index, "time_s": round(time_s, 4), "position": req.position_name,
            "mode": req.mode, "followup": req.followup if req.followup is not None else "",
            "objective": req.objective, "channel": req.channel, "pixel_size_um": ps,
            "y": float(c.y), "x": float(c.x), "x_um": x_um, "y_um": y_um,
            "area_um2": float(getattr(c, "area_um2", float("nan"))), "phase": str(c.phase),
            "confidence": float(c.confidence),
            "probabilities": getattr(c, "probabilities", None),
        }

    def frame(self, index: int, time_s: float, req: FrameRequest,
              decisions: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
              latency_ms: float) -> None:
        """Record one frame's cells and decisions; a write failure is logged, never raised."""
        try:
            if self.cells is not None and rows:
                self.cells.write(rows)
            for d in decisions:
                self.note({"frame": index, "time_s": round(time_s, 4),
                           "position": req.position_name, "mode": req.mode, **d,
                           "latency_ms": round(latency_ms, 2)})
        except Exception:
            log.exception("could not write run records for frame %d", index)

    def note(self, record: Mapping[str, Any]) -> None:
        """Append one decision record."""
        rec = dict(record)
        self.decision_log.append(rec)
        if rec.get("event") != "error":  # errors are logged with their traceback where caught
            log.info("decision: %s", summary(rec))
        if self.decisions is not None:
            self.decisions.write(rec)

    def close(self) -> None:
        """Close the files (idempotent)."""
        for sink in (self.cells, self.decisions):
            if sink is not None:
                sink.close()


def summary(rec: Mapping[str, Any]) -> str:
    """A decision record in one short line."""
    keys = ("event", "frame", "time_s", "position", "trigger", "reason")
    return " ".join(f"{k}={rec[k]}" for k in keys if rec.get(k) is not None)
