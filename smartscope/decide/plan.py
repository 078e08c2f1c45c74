"""The planner: screening one frame at a time, triggers, and each trigger's follow-up program.

Pure logic, no microscope: it is fed ``Frame`` observations (what was imaged, when, which cells
were found) and answers with a ``Step``: the next ``FrameRequest``s, the decisions to record, and
whether the run is over. The acquisition hook turns requests into pycromanager events.

Follow-up programs run a trigger's actions in order (see ``smartscope.protocol.actions``).
Timing: a screening time point starts ``interval_s`` after the previous one started (at once if
that moment has passed, e.g. after a follow-up); ``change_interval`` frames are ``interval_s``
after the previous frame. Times are seconds since the acquisition started (image timestamps).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from smartscope.classify.cells import Cell
from smartscope.decide.followup import annotate, check_confirmation, pick_cell
from smartscope.decide.geometry import NO_LIMITS, UPRIGHT, Affine, Limits, check_target
from smartscope.decide.program import FollowUpActions
from smartscope.decide.records import Decision, DecisionEvent, cell_record
from smartscope.decide.requests import FOLLOW, SCREEN, FrameRequest
from smartscope.decide.steps import Draft, FollowUp
from smartscope.decide.steps import Frame as Frame  # re-exported
from smartscope.decide.steps import Step as Step  # re-exported
from smartscope.decide.tracking import NucleusTracker
from smartscope.decide.triggers import TriggerTracker, condition_holds
from smartscope.errors import ProtocolError
from smartscope.protocol import (
    Burst,
    CameraOrientation,
    CentreOnCell,
    ChangeInterval,
    Position,
    Protocol,
    ReturnToScreening,
    Screening,
    SetChannel,
    Stop,
    Tracking,
    Trigger,
    ZStack,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanSettings:
    """Everything the planner needs, resolved (positions have z, limits are merged)."""

    screening: Screening
    positions: tuple[Position, ...]
    triggers: tuple[Trigger, ...] = ()
    objective_group: str = "Objective"
    channel_group: str = "Channel"
    objective_offsets_um: Mapping[str, float] = field(default_factory=dict)
    orientation: CameraOrientation = UPRIGHT
    limits: Limits = NO_LIMITS
    tracking: Tracking = field(default_factory=lambda: Tracking.model_validate({}))
    affines_um: Mapping[str, Affine] = field(default_factory=dict)
    """Micro-Manager's calibrated pixel -> stage affine per objective (used instead of
    ``orientation`` and the pixel size for that objective's images)."""

    @classmethod
    def from_protocol(
        cls, protocol: Protocol, positions: Sequence[Position], stage_limits: Limits = NO_LIMITS,
        affines_um: Mapping[str, Affine] | None = None,
    ) -> PlanSettings:
        """Settings from a protocol; ``positions`` are the screening positions with z filled in
        and ``stage_limits`` the stage's own travel (used where the protocol gives none)."""
        m = protocol.microscope
        lim = m.stage_limits
        limits = Limits.merge(Limits(lim.x_um, lim.y_um, lim.z_um), stage_limits)
        focus = [p.z_um for p in positions if p.z_um is not None]
        if focus:  # z moves stay near the focus the run started with
            limits = limits.near_focus(min(focus), max(focus), m.max_focus_travel_um)
        return cls(
            screening=protocol.screening,
            positions=tuple(positions),
            triggers=protocol.triggers,
            objective_group=m.objective_group,
            channel_group=m.channel_group,
            objective_offsets_um={k: v.parfocal_z_offset_um for k, v in m.objectives.items()},
            orientation=m.camera,
            limits=limits,
            tracking=protocol.tracking,
            affines_um=dict(affines_um or {}),
        )


class Planner(FollowUpActions):
    """Closed-loop acquisition logic (see module docstring). Not thread-safe: one hook feeds it."""

    def __init__(self, settings: PlanSettings, source: str = "<protocol>") -> None:
        self.s = settings
        # without screening positions in the protocol the run screens at the stage's position
        given = settings.screening.position_list() is not None or len(settings.positions) > 1
        for i, pos in enumerate(settings.positions):
            why = check_target(settings.limits, pos.x_um, pos.y_um, pos.z_um)
            if why is not None:
                if given:
                    raise ProtocolError(
                        f"{source}: field 'screening.positions[{i}]': {why}; move the position "
                        "inside the stage limits or change microscope.stage_limits")
                raise ProtocolError(
                    f"{source}: the stage's current position (the protocol gives no "
                    f"screening.positions, so the run screens where the stage is): {why}; move "
                    "the stage inside microscope.stage_limits (and the focus within "
                    "max_focus_travel_um of them) or change the limits")
        self._tracker = TriggerTracker(settings.triggers)
        self._nuclei = NucleusTracker(settings.tracking.max_displacement_um,
                                      settings.tracking.max_missed_frames)
        self._t = 0
        self._p = 0
        self._tp_start_s: float | None = None
        self._follow: FollowUp | None = None
        self._n_followups = 0
        self._follow_time = 0
        self._outstanding = 0
        self._done = False
        self._now_s = 0.0
        self.triggers_fired = 0
        self.late_starts = 0
        """Frames that could not start on their interval: the work before them did not fit."""

    # --- public ---------------------------------------------------------------------------------

    @property
    def in_followup(self) -> bool:
        return self._follow is not None

    def start(self) -> Step:
        """The first screening request."""
        step = Draft()
        self._emit(step, [self._screen_request(None)])
        return step.step()

    @property
    def triggers(self) -> TriggerTracker:
        """The trigger state (persistence counts, followed tracks, follow-ups per trigger)."""
        return self._tracker

    def on_frame(self, frame: Frame) -> Step:
        """Feed one acquired frame; returns what to do next."""
        if frame.cells is not None:
            frame = replace(frame, cells=self._annotate(frame))
        step = Draft()
        self._on_frame(frame, step)
        return step.step(frame.cells)

    def _on_frame(self, frame: Frame, step: Draft) -> None:
        if self._done:
            step.done = True
            return
        self._now_s = max(self._now_s, frame.time_s)
        self._outstanding = max(0, self._outstanding - 1)
        f = self._follow
        if f is not None and frame.request.mode == FOLLOW and frame.request.classify:
            f.present = None if frame.cells is None else condition_holds(f.trigger, frame.cells)
            f.last_time_s = frame.time_s
        if self._outstanding > 0:
            return
        if f is None:
            self._after_screen(frame, step)
        else:
            self._advance(frame, step)

    def abandon(self, time_s: float, reason: str) -> Step:
        """After a hook failure: drop any follow-up and go on screening (or end)."""
        step = Draft()
        self._outstanding = 0
        if self._follow is not None:
            step.add(self._end("abandoned", self._follow, time_s, reason=reason))
            self._follow = None
        self._next_screen(step)
        return step.step()

    # --- screening ------------------------------------------------------------------------------

    def _screen_request(self, min_start_s: float | None) -> FrameRequest:
        pos = self.s.positions[self._p]
        sc = self.s.screening
        return FrameRequest(
            mode=SCREEN, time_index=self._t, position=self._p,
            position_name=pos.name or f"pos{self._p}", objective=sc.objective,
            channel_group=self.s.channel_group, channel=sc.channel, exposure_ms=sc.exposure_ms,
            x_um=pos.x_um, y_um=pos.y_um, z_um=pos.z_um, min_start_time_s=min_start_s,
        )

    def _after_screen(self, frame: Frame, step: Draft) -> None:
        req = frame.request
        if req.mode == SCREEN and req.position == 0:
            # start to start: the next time point is due an interval after this one was due
            self._tp_start_s = req.min_start_time_s if req.min_start_time_s is not None else 0.0
        fired = None
        if req.mode == SCREEN and frame.cells is not None:
            fired = self._tracker.update(req.position, frame.time_s, frame.cells)
        if fired is None:
            self._next_screen(step)
            return
        trig, matched = fired
        self.triggers_fired += 1
        self._n_followups += 1
        centre = next((a for a in trig.program() if isinstance(a, CentreOnCell)), None)
        cell = matched[0] if centre is None else pick_cell(matched, centre.cell, frame.shape)
        # a zoom looks at one cell; a follow-up at the same field looks at every matched cell
        self._tracker.mark_followed(trig.name, [c.track for c in
                                                (matched if centre is None else [cell])])
        f = FollowUp(id=self._n_followups, trigger=trig, origin=req,
                      state=replace(req, mode=FOLLOW, trigger=trig.name,
                                    followup=self._n_followups, min_start_time_s=None),
                      trigger_frame=frame, matched=tuple(matched), cell=cell)
        self._follow = f
        step.trigger = {
            **self._fields("trigger", f, frame.time_s), "frame": frame.index, "cell": cell,
            "cells": f.matched,
            "actions": tuple(a.model_dump(mode="json") for a in trig.program()),
        }
        means = self._tracker.evidence
        if means is not None:  # evidence: mean, in the order of matched
            step.trigger["evidence"] = {
                "rule": "mean", "frames": trig.consecutive_frames,
                "mean": round(means[matched.index(cell)], 4),
                "means": [round(m, 4) for m in means]}
        self._advance(frame, step)

    def _next_screen(self, step: Draft) -> None:
        self._p += 1
        min_start = None
        if self._p >= len(self.s.positions):
            self._p = 0
            self._t += 1
            sc = self.s.screening
            start = (self._tp_start_s or 0.0) + sc.interval_s
            if (sc.n_timepoints is not None and self._t >= sc.n_timepoints) or (
                sc.duration_s is not None and start >= sc.duration_s
            ):
                self._done = True
                step.add(Decision("screening_done", time_points=self._t))
                step.done = True
                return
            min_start = self._on_time(start, "screening.interval_s", sc.interval_s)
        self._emit(step, [self._screen_request(min_start)])

    def _on_time(self, due_s: float, what: str, interval_s: float) -> float:
        """``due_s``, or now when the work since the last start did not fit (counted, warned
        once): the frame then starts at once and the schedule restarts from it, so a late run
        does not catch up with a burst of frames."""
        if due_s >= self._now_s:
            return due_s
        self.late_starts += 1
        if self.late_starts == 1:
            log.warning("a frame started %.2f s late: the work before it (stage and objective "
                        "moves, exposure, the hook, a follow-up) does not fit %s = %g s",
                        self._now_s - due_s, what, interval_s)
        return self._now_s

    def _emit(self, step: Draft, requests: list[FrameRequest]) -> None:
        f = self._follow
        if f is not None:  # a follow-up frame names the action that asked for it
            requests = [replace(r, step=f.step) if r.mode == FOLLOW else r for r in requests]
            for r in requests:
                if r.mode == FOLLOW:
                    f.n_frames += 1
                    f.light_ms += r.exposure_ms
        self._outstanding += len(requests)
        step.requests.extend(requests)

    # --- follow-up ------------------------------------------------------------------------------

    def _advance(self, frame: Frame, step: Draft) -> None:
        f = self._follow
        assert f is not None
        program = f.trigger.program()
        while True:
            action = program[f.step]
            if isinstance(action, CentreOnCell):
                if not f.started:
                    why = self._centre(f, action, step)
                    if why is not None:
                        step.add(self._end("refused", f, frame.time_s, reason=why))
                        self._follow = None
                        self._next_screen(step)
                        return
                    if action.confirm is not None:
                        f.started = True
                        self._follow_time += 1
                        self._emit(step, [replace(
                            f.state, time_index=self._follow_time, z_index=0, classify=True,
                            action="confirm", min_start_time_s=None)])
                        return
                else:
                    assert action.confirm is not None
                    seen, why = check_confirmation(action.confirm, f.trigger.phase, frame,
                                                   _record)
                    if why is not None:
                        step.add(self._end("not_confirmed", f, frame.time_s,
                                           frame=frame.index, reason=why, seen=seen))
                        self._follow = None
                        self._next_screen(step)
                        return
                    step.add(self._decision("confirmed", f, frame.time_s,
                                            frame=frame.index, seen=seen))
            elif isinstance(action, SetChannel):
                f.state = replace(
                    f.state, channel_group=action.group or self.s.channel_group,
                    channel=action.preset,
                    exposure_ms=action.exposure_ms or f.state.exposure_ms,
                )
            elif isinstance(action, ChangeInterval):
                if self._interval_frame(f, action, frame, step):
                    return
            elif isinstance(action, ZStack | Burst):
                if not f.started:
                    reqs, why = self._stack_or_burst(f, action, frame.time_s)
                    if why is None:
                        f.started = True
                        self._emit(step, reqs)
                        return
                    step.add(self._decision("refused", f, frame.time_s, action=action.type,
                                            reason=why))
            elif isinstance(action, Stop):
                step.add(self._end("stop", f, frame.time_s))
                self._follow = None
                self._done = True
                step.done = True
                return
            elif isinstance(action, ReturnToScreening):
                step.add(self._end("return", f, frame.time_s))
                self._follow = None
                self._next_screen(step)
                return
            f.step += 1
            f.started = False
            f.frames = 0
            f.absent = 0

    # --- records --------------------------------------------------------------------------------

    def _annotate(self, frame: Frame) -> tuple[Cell, ...]:
        """The frame's cells with stage coordinates, border distance and tracks."""
        f = self._follow
        return annotate(frame, self.s.orientation, self._nuclei,
                        followed=f.matched if f is not None else (),
                        reach_um=self.s.tracking.max_displacement_um,
                        affine=self.s.affines_um.get(frame.request.objective))

    def _end(self, event: DecisionEvent, f: FollowUp, time_s: float, **extra: Any) -> Decision:
        """The decision that ends a follow-up, with what it cost: frames, light (exposure ms
        summed), time since the trigger frame."""
        return self._decision(event, f, time_s, followup_frames=f.n_frames, light_ms=f.light_ms,
                              duration_s=time_s - f.trigger_frame.time_s, **extra)

    def _fields(self, event: DecisionEvent, f: FollowUp, time_s: float) -> dict[str, Any]:
        return {"event": event, "time_s": time_s, "position": f.origin.position_name,
                "trigger": f.trigger.name, "followup": f.id}

    def _decision(self, event: DecisionEvent, f: FollowUp, time_s: float,
                  **extra: Any) -> Decision:
        return Decision(**self._fields(event, f, time_s), **extra)


def _record(cell: Cell, frame: Frame) -> dict[str, Any]:
    """A cell of a confirmation frame in its decision record (see ``records.cell_record``)."""
    return cell_record(cell)
