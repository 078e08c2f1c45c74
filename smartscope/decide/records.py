"""The planner's and the hook's decisions as typed, frozen records.

Each ``Decision`` is built once, complete, and never changed afterwards; ``to_record`` gives the
JSON object written to ``decisions.jsonl`` (fields that do not apply are left out). The run
adds ``frame``, ``time_s``, ``position``, ``mode`` and ``latency_ms`` when it records it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from smartscope.classify.cells import Cell

DecisionEvent = Literal[
    "trigger", "refused", "confirmed", "not_confirmed", "interval_end", "return", "stop",
    "abandoned", "error", "interrupted", "screening_done",
]
"""What happened: a trigger fired; an action or a centring was refused (stage limits); the
centred nucleus was (not) confirmed at the new objective; a ``change_interval`` ended; the
follow-up returned to screening; the run stopped; a follow-up was abandoned after a hook failure;
a failure; the run was interrupted; screening ended."""


@dataclass(frozen=True, slots=True)
class CentreTarget:
    """Where ``centre_on_cell`` moves: objective and stage target (um) for a cell (px)."""

    objective: str
    x_um: float
    y_um: float
    z_um: float | None
    cell_y_px: float
    cell_x_px: float
    refused: str | None = None
    """Why the target was refused (outside the stage limits), None when accepted."""

    def to_record(self) -> dict[str, Any]:
        return {"objective": self.objective, "x_um": self.x_um, "y_um": self.y_um,
                "z_um": self.z_um, "cell": {"y_px": self.cell_y_px, "x_px": self.cell_x_px}}


def cell_record(cell: Cell) -> dict[str, Any]:
    """A cell in a decision record: pixels, stage micrometres, phase, confidence, track."""
    return {"y_px": round(cell.y, 2), "x_px": round(cell.x, 2),
            "x_um": None if cell.x_um is None else round(cell.x_um, 3),
            "y_um": None if cell.y_um is None else round(cell.y_um, 3),
            "phase": cell.phase, "confidence": round(cell.confidence, 4), "track": cell.track}


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision (see ``DecisionEvent``); times in seconds since the acquisition started.

    Attributes
    ----------
    event : DecisionEvent
    time_s : float, optional
        When it was decided (the time stamp of the image that led to it).
    position : str, optional
        Name of the screening position of the follow-up.
    trigger : str, optional
        Name of the trigger.
    followup : int, optional
        Number of the follow-up in the run (1, 2, ...).
    frame : int, optional
        Index of the image that fired the trigger (or was checked by a confirmation).
    cell : Cell, optional
        The cell the follow-up looks at (trigger).
    cells : tuple of Cell
        The cells the trigger fired on, with their stage positions.
    actions : tuple of dict
        The trigger's program, as in the protocol (trigger).
    target : CentreTarget, optional
        The centring target when the program starts by centring (trigger).
    followup_frames, light_ms, duration_s : optional
        What a follow-up cost when it ends: frames, exposure summed (ms), time since the trigger
        frame (s).
    action : str, optional
        The refused action (``z_stack``, ``burst``).
    frames : int, optional
        Frames taken by the ``change_interval`` that ended.
    reason : str, optional
        Why (refusal, end of an interval, abandoned follow-up, stop, not confirmed).
    evidence : dict, optional
        With ``evidence: mean`` (trigger): ``rule``, ``frames``, the followed cell's ``mean``
        probability of the phase over those frames and every matched cell's (``means``, in the
        order of ``cells``): what made them count (their ``confidence`` is the last frame's).
    seen : dict, optional
        The nucleus a confirmation frame showed at the centre (``cell_record`` plus offset).
    where, error, on_error : str, optional
        For failures: the step that failed, the error, the policy applied.
    time_points : int, optional
        Screening time points taken (screening_done).
    """

    event: DecisionEvent
    time_s: float | None = None
    position: str | None = None
    trigger: str | None = None
    followup: int | None = None
    frame: int | None = None
    cell: Cell | None = None
    cells: tuple[Cell, ...] = ()
    actions: tuple[Mapping[str, Any], ...] = ()
    target: CentreTarget | None = None
    followup_frames: int | None = None
    light_ms: float | None = None
    duration_s: float | None = None
    action: str | None = None
    frames: int | None = None
    reason: str | None = None
    evidence: Mapping[str, Any] | None = None
    seen: Mapping[str, Any] | None = None
    where: str | None = None
    error: str | None = None
    on_error: str | None = None
    time_points: int | None = None

    def to_record(self) -> dict[str, Any]:
        """The ``decisions.jsonl`` object: the fields that apply, times rounded to 0.1 ms."""
        rec: dict[str, Any] = {"event": self.event}
        if self.time_s is not None:
            rec["time_s"] = round(self.time_s, 4)
        for key in ("position", "trigger", "followup", "frame"):
            value = getattr(self, key)
            if value is not None:
                rec[key] = value
        if self.cell is not None:
            rec["cell"] = cell_record(self.cell)
        if self.event == "trigger":
            rec["cells"] = [cell_record(c) for c in self.cells]
            rec["actions"] = [dict(a) for a in self.actions]
            if self.evidence is not None:
                rec["evidence"] = dict(self.evidence)
        if self.target is not None:
            rec["target"] = self.target.to_record()
            rec["refused"] = self.target.refused
        if self.followup_frames is not None:
            rec["followup_frames"] = self.followup_frames
        if self.light_ms is not None:
            rec["light_ms"] = round(self.light_ms, 3)
        if self.duration_s is not None:
            rec["duration_s"] = round(self.duration_s, 4)
        for key in ("action", "frames", "reason", "where", "error", "on_error", "time_points"):
            value = getattr(self, key)
            if value is not None:
                rec[key] = value
        if self.event in ("confirmed", "not_confirmed"):
            rec["seen"] = None if self.seen is None else dict(self.seen)
        return rec
