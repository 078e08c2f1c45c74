"""What the planner reads and answers (``Frame``, ``Step``) and the state it keeps while it
builds an answer (``Draft``) and runs a follow-up program (``FollowUp``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smartscope.classify.cells import Cell
from smartscope.decide.records import CentreTarget, Decision
from smartscope.decide.requests import FrameRequest
from smartscope.protocol import Trigger


@dataclass(frozen=True)
class Frame:
    """One acquired image as the planner sees it."""

    request: FrameRequest
    index: int
    time_s: float
    shape: tuple[int, int]
    pixel_size_um: float
    cells: tuple[Cell, ...] | None = None


@dataclass(frozen=True)
class Step:
    """The planner's answer to a frame: the next requests, the decisions, whether the run ends.

    ``cells`` are the frame's cells as the planner saw them (stage coordinates, distance to the
    border, track ids), in the order of ``Frame.cells``; None when the frame had none.
    """

    requests: tuple[FrameRequest, ...] = ()
    decisions: tuple[Decision, ...] = ()
    done: bool = False
    cells: tuple[Cell, ...] | None = None


@dataclass
class Draft:
    """A ``Step`` being put together (internal). A trigger's decision is held back until the
    next decision or the end of the step, so that the centring target of a program that starts
    by centring goes into it when it is built (a decision is never changed once built)."""

    requests: list[FrameRequest] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    done: bool = False
    trigger: dict[str, Any] | None = None  # fields of the trigger decision not built yet

    def add(self, decision: Decision) -> None:
        self._flush()
        self.decisions.append(decision)

    def target(self, target: CentreTarget) -> None:
        if self.trigger is not None:
            self.trigger["target"] = target

    def _flush(self) -> None:
        if self.trigger is not None:
            self.decisions.append(Decision(**self.trigger))
            self.trigger = None

    def step(self, cells: tuple[Cell, ...] | None = None) -> Step:
        self._flush()
        return Step(tuple(self.requests), tuple(self.decisions), self.done, cells)


@dataclass
class FollowUp:
    """The running follow-up program (internal, mutable state of the planner)."""

    id: int
    trigger: Trigger
    origin: FrameRequest
    state: FrameRequest  # template: objective, channel, exposure, x, y, z of follow-up frames
    trigger_frame: Frame
    matched: tuple[Cell, ...]
    cell: Cell
    step: int = 0
    started: bool = False
    frames: int = 0
    absent: int = 0
    last_time_s: float = 0.0
    last_start_s: float | None = None
    present: bool | None = None
    n_frames: int = 0
    light_ms: float = 0.0
    centred: bool = False
