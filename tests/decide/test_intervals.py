"""Intervals are start-to-start: a frame's work (moves, exposure, the hook) does not add to the
interval while it fits; when it does not, the next frame starts at once (no burst of catch-up
frames) and the planner counts it."""

from __future__ import annotations

import pytest

from smartscope.decide import Cell, Frame, Planner, PlanSettings
from smartscope.protocol import Position, Screening, Trigger

META = Cell(512.0, 512.0, "metaphase", 0.95, 80.0)


def _plan(interval_s: float, n_pos: int = 1, actions=None) -> Planner:
    triggers = () if actions is None else (Trigger.model_validate(
        {"name": "t", "phase": "metaphase", "min_confidence": 0.8, "actions": actions}),)
    return Planner(PlanSettings(
        screening=Screening(objective="10x", channel="FITC", exposure_ms=20,
                            interval_s=interval_s, n_timepoints=5),
        positions=tuple(Position(name=f"p{i}", x_um=100.0 * i, y_um=0, z_um=0)
                        for i in range(n_pos)),
        triggers=triggers,
    ))


def _drive(planner: Planner, work_s: float, cells=lambda req: ()) -> list[tuple]:
    """Each frame starts at its min start time (or when the previous one's work ended) and its
    image arrives ``work_s`` later; returns (request, start_s, image_s)."""
    log, free = [], 0.0
    pending = list(planner.start().requests)
    while pending and len(log) < 100:
        req = pending.pop(0)
        start = max(free, req.min_start_time_s or 0.0)
        image = start + work_s
        free = image
        log.append((req, start, image))
        frame = Frame(request=req, index=len(log) - 1, time_s=image, shape=(1024, 1024),
                      pixel_size_um=0.645, cells=tuple(cells(req)) if req.classify else None)
        step = planner.on_frame(frame)
        pending += step.requests
        if step.done:
            break
    return log


def test_screening_starts_every_interval_whatever_the_work():
    planner = _plan(2.0, n_pos=2)
    log = _drive(planner, work_s=0.7)  # two positions: 1.4 s of work in a 2 s interval
    starts = [s for r, s, _ in log if r.position == 0]
    assert starts == pytest.approx([0, 2, 4, 6, 8])  # not 0, 2.7, 5.4, ... (image to start)
    assert planner.late_starts == 0


def test_work_longer_than_the_interval_starts_at_once_and_is_counted():
    planner = _plan(1.0)
    log = _drive(planner, work_s=1.5)
    starts = [s for _, s, _ in log]
    assert starts == pytest.approx([0, 1.5, 3.0, 4.5, 6.0])  # back to back, no catch-up burst
    assert planner.late_starts == 4


def test_change_interval_is_start_to_start():
    actions = [{"type": "change_interval", "interval_s": 0.5, "min_frames": 4, "max_frames": 4,
                "while_phase_persists": False}]
    planner = _plan(2.0, actions=actions)
    log = _drive(planner, work_s=0.2, cells=lambda req: (META,))
    follow = [s for r, s, _ in log if r.action == "change_interval" and r.followup == 1]
    assert len(follow) == 4
    # the first frame's start is not known to the planner: its image (0.2 s of work later)
    # anchors the schedule, then every start is 0.5 s after the previous one
    assert [b - a for a, b in zip(follow, follow[1:], strict=False)] == pytest.approx(
        [0.7, 0.5, 0.5])
