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

from smartscope.decide.followup import annotate, check_confirmation, pick_cell
from smartscope.decide.geometry import (
    NO_LIMITS,
    UPRIGHT,
    Affine,
    Limits,
    check_target,
    pixel_to_stage,
)
from smartscope.decide.requests import FOLLOW, SCREEN, FrameRequest
from smartscope.decide.tracking import NucleusTracker
from smartscope.decide.triggers import Cell, TriggerTracker, condition_holds
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


@dataclass(frozen=True)
class Frame:
    """One acquired image as the planner sees it."""

    request: FrameRequest
    index: int
    time_s: float
    shape: tuple[int, int]
    pixel_size_um: float
    cells: tuple[Cell, ...] | None = None


@dataclass
class Step:
    """The planner's answer to a frame.

    ``cells`` are the frame's cells as the planner saw them (stage coordinates, distance to the
    border, track ids), in the order of ``Frame.cells``; None when the frame had none.
    """

    requests: list[FrameRequest] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    cells: tuple[Cell, ...] | None = None


@dataclass
class _FollowUp:
    id: int
    trigger: Trigger
    origin: FrameRequest
    state: FrameRequest  # template: objective, channel, exposure, x, y, z of follow-up frames
    trigger_frame: Frame
    matched: list[Cell]
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


class Planner:
    """Closed-loop acquisition logic (see module docstring). Not thread-safe: one hook feeds it."""

    def __init__(self, settings: PlanSettings) -> None:
        self.s = settings
        for i, pos in enumerate(settings.positions):
            why = check_target(settings.limits, pos.x_um, pos.y_um, pos.z_um)
            if why is not None:
                raise ProtocolError(
                    f"field 'screening.positions[{i}]': {why}; move the position inside the "
                    "stage limits or change microscope.stage_limits"
                )
        self._tracker = TriggerTracker(settings.triggers)
        self._nuclei = NucleusTracker(settings.tracking.max_displacement_um,
                                      settings.tracking.max_missed_frames)
        self._t = 0
        self._p = 0
        self._tp_start_s: float | None = None
        self._follow: _FollowUp | None = None
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
        return self._emit([self._screen_request(None)])

    @property
    def triggers(self) -> TriggerTracker:
        """The trigger state (persistence counts, followed tracks, follow-ups per trigger)."""
        return self._tracker

    def on_frame(self, frame: Frame) -> Step:
        """Feed one acquired frame; returns what to do next."""
        if frame.cells is not None:
            frame = replace(frame, cells=self._annotate(frame))
        step = self._on_frame(frame)
        step.cells = frame.cells
        return step

    def _on_frame(self, frame: Frame) -> Step:
        if self._done:
            return Step(done=True)
        self._now_s = max(self._now_s, frame.time_s)
        self._outstanding = max(0, self._outstanding - 1)
        f = self._follow
        if f is not None and frame.request.mode == FOLLOW and frame.request.classify:
            f.present = None if frame.cells is None else condition_holds(f.trigger, frame.cells)
            f.last_time_s = frame.time_s
        if self._outstanding > 0:
            return Step()
        if f is None:
            return self._after_screen(frame)
        return self._advance(frame, Step())

    def abandon(self, time_s: float, reason: str) -> Step:
        """After a hook failure: drop any follow-up and go on screening (or end)."""
        step = Step()
        self._outstanding = 0
        if self._follow is not None:
            step.decisions.append(self._end("abandoned", self._follow, time_s, reason=reason))
            self._follow = None
        return self._next_screen(step)

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

    def _after_screen(self, frame: Frame) -> Step:
        req = frame.request
        if req.mode == SCREEN and req.position == 0:
            # start to start: the next time point is due an interval after this one was due
            self._tp_start_s = req.min_start_time_s if req.min_start_time_s is not None else 0.0
        fired = None
        if req.mode == SCREEN and frame.cells is not None:
            fired = self._tracker.update(req.position, frame.time_s, frame.cells)
        if fired is None:
            return self._next_screen(Step())
        trig, matched = fired
        self.triggers_fired += 1
        self._n_followups += 1
        centre = next((a for a in trig.program() if isinstance(a, CentreOnCell)), None)
        cell = matched[0] if centre is None else pick_cell(matched, centre.cell, frame.shape)
        # a zoom looks at one cell; a follow-up at the same field looks at every matched cell
        self._tracker.mark_followed(trig.name, [c.track for c in
                                                (matched if centre is None else [cell])])
        f = _FollowUp(id=self._n_followups, trigger=trig, origin=req,
                      state=replace(req, mode=FOLLOW, trigger=trig.name,
                                    followup=self._n_followups, min_start_time_s=None),
                      trigger_frame=frame, matched=matched, cell=cell)
        self._follow = f
        d = self._decision("trigger", f, frame.time_s, frame=frame.index)
        d["cell"] = self._cell_record(cell, frame)
        d["cells"] = [self._cell_record(c, frame) for c in matched]
        d["actions"] = [a.model_dump(mode="json") for a in trig.program()]
        step = Step(decisions=[d])
        return self._advance(frame, step)

    def _next_screen(self, step: Step) -> Step:
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
                step.decisions.append({"event": "screening_done", "time_points": self._t})
                step.done = True
                return step
            min_start = self._on_time(start, "screening.interval_s", sc.interval_s)
        step.requests.extend(self._emit([self._screen_request(min_start)]).requests)
        return step

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

    def _emit(self, requests: list[FrameRequest]) -> Step:
        self._outstanding += len(requests)
        f = self._follow
        if f is not None:
            for r in requests:
                if r.mode == FOLLOW:
                    f.n_frames += 1
                    f.light_ms += r.exposure_ms
        return Step(requests=requests)

    # --- follow-up ------------------------------------------------------------------------------

    def _advance(self, frame: Frame, step: Step) -> Step:
        f = self._follow
        assert f is not None
        program = f.trigger.program()
        while True:
            action = program[f.step]
            if isinstance(action, CentreOnCell):
                if not f.started:
                    why = self._centre(f, action, step)
                    if why is not None:
                        step.decisions.append(self._end("refused", f, frame.time_s, reason=why))
                        self._follow = None
                        return self._next_screen(step)
                    if action.confirm is not None:
                        f.started = True
                        self._follow_time += 1
                        step.requests.extend(self._emit([replace(
                            f.state, time_index=self._follow_time, z_index=0, classify=True,
                            action="confirm", min_start_time_s=None)]).requests)
                        return step
                else:
                    assert action.confirm is not None
                    seen, why = check_confirmation(action.confirm, f.trigger.phase, frame,
                                                   self._cell_record)
                    if why is not None:
                        step.decisions.append(self._end("not_confirmed", f, frame.time_s,
                                                        frame=frame.index, reason=why, seen=seen))
                        self._follow = None
                        return self._next_screen(step)
                    step.decisions.append(self._decision("confirmed", f, frame.time_s,
                                                         frame=frame.index, seen=seen))
            elif isinstance(action, SetChannel):
                f.state = replace(
                    f.state, channel_group=action.group or self.s.channel_group,
                    channel=action.preset,
                    exposure_ms=action.exposure_ms or f.state.exposure_ms,
                )
            elif isinstance(action, ChangeInterval):
                if self._interval_frame(f, action, frame, step):
                    return step
            elif isinstance(action, ZStack | Burst):
                if not f.started:
                    reqs, why = self._stack_or_burst(f, action, frame.time_s)
                    if why is None:
                        f.started = True
                        step.requests.extend(self._emit(reqs).requests)
                        return step
                    step.decisions.append(
                        self._decision("refused", f, frame.time_s, action=action.type, reason=why))
            elif isinstance(action, Stop):
                step.decisions.append(self._end("stop", f, frame.time_s))
                self._follow = None
                self._done = True
                step.done = True
                return step
            elif isinstance(action, ReturnToScreening):
                step.decisions.append(self._end("return", f, frame.time_s))
                self._follow = None
                return self._next_screen(step)
            f.step += 1
            f.started = False
            f.frames = 0
            f.absent = 0

    def _centre(self, f: _FollowUp, action: CentreOnCell, step: Step) -> str | None:
        frame, cell = f.trigger_frame, f.cell
        if f.centred:  # a second centring in the same program: the cell is at the centre already
            return self._move(f, action.objective, f.state.x_um, f.state.y_um)[0]
        x, y = pixel_to_stage(cell.y, cell.x, shape=frame.shape, pixel_size_um=frame.pixel_size_um,
                              stage_x_um=f.state.x_um, stage_y_um=f.state.y_um,
                              orientation=self.s.orientation,
                              affine=self.s.affines_um.get(frame.request.objective))
        objective = action.objective or f.state.objective
        why, z = self._move(f, objective, x, y)
        f.centred = why is None
        if step.decisions and step.decisions[-1].get("event") == "trigger":
            step.decisions[-1]["target"] = {"objective": objective, "x_um": x, "y_um": y,
                                            "z_um": z, "cell": {"y_px": cell.y, "x_px": cell.x}}
            step.decisions[-1]["refused"] = why
        return why

    def _move(self, f: _FollowUp, objective_name: str | None, x: float,
              y: float) -> tuple[str | None, float | None]:
        """Move the follow-up's state to (x, y) at an objective (focus corrected by the parfocal
        offsets), unless the target is unsafe: (why not, or None; target z)."""
        objective = objective_name or f.state.objective
        z = f.state.z_um
        if z is not None:
            off = self.s.objective_offsets_um
            z = z + off.get(objective, 0.0) - off.get(f.state.objective, 0.0)
        why = check_target(self.s.limits, x, y, z)
        if why is None:
            f.state = replace(f.state, objective=objective, x_um=x, y_um=y, z_um=z)
        return why, z

    def _interval_frame(
        self, f: _FollowUp, action: ChangeInterval, frame: Frame, step: Step
    ) -> bool:
        """Run one change_interval time point; False once the action is over."""
        if f.started:
            f.frames += 1
            f.absent = 0 if f.present in (True, None) else f.absent + 1
            over = f.frames >= action.max_frames or (
                action.while_phase_persists
                and f.frames >= action.min_frames
                and f.absent >= action.absent_frames
            )
            if over:
                reason = "max_frames" if f.frames >= action.max_frames else "phase_absent"
                step.decisions.append(self._decision(
                    "interval_end", f, frame.time_s, frames=f.frames, reason=reason))
                return False
        if not f.started:  # the first frame as soon as possible
            start = None
            f.last_start_s = None
        else:  # start to start; the first frame's start is unknown: its image anchors the rest
            anchor = f.last_start_s if f.last_start_s is not None else f.last_time_s
            start = self._on_time(anchor + action.interval_s, "change_interval.interval_s",
                                  action.interval_s)
            f.last_start_s = start
        f.started = True
        self._follow_time += 1
        main = replace(f.state, time_index=self._follow_time, min_start_time_s=start,
                       classify=True, action=action.type, z_index=0)
        reqs = [main]
        for extra in action.extra_channels:
            reqs.append(replace(main, classify=False, channel=extra.preset,
                                channel_group=extra.group or self.s.channel_group,
                                exposure_ms=extra.exposure_ms or main.exposure_ms,
                                min_start_time_s=None))
        step.requests.extend(self._emit(reqs).requests)
        return True

    def _stack_or_burst(
        self, f: _FollowUp, action: ZStack | Burst, now_s: float
    ) -> tuple[list[FrameRequest], str | None]:
        reqs: list[FrameRequest] = []
        if isinstance(action, ZStack):
            if f.state.z_um is None:
                return [], "the focus position is unknown, so a z-stack cannot be centred"
            self._follow_time += 1
            for j, dz in enumerate(action.offsets_um()):
                z = f.state.z_um + dz
                why = check_target(self.s.limits, None, None, z)
                if why is not None:
                    return [], why
                reqs.append(replace(f.state, time_index=self._follow_time, z_um=z, z_index=j,
                                    classify=False, action=action.type, min_start_time_s=None))
            return reqs, None
        for i in range(action.n_frames):
            self._follow_time += 1
            start = now_s + i * action.interval_s if action.interval_s > 0 else None
            reqs.append(replace(f.state, time_index=self._follow_time, z_index=0, classify=False,
                                action=action.type, min_start_time_s=start))
        return reqs, None

    # --- records --------------------------------------------------------------------------------

    def _cell_record(self, cell: Cell, frame: Frame) -> dict[str, Any]:
        x, y = cell.x_um, cell.y_um
        if x is None or y is None:
            x, y = self._stage(cell, frame)
        return {"y_px": round(cell.y, 2), "x_px": round(cell.x, 2), "x_um": round(x, 3),
                "y_um": round(y, 3), "phase": cell.phase, "confidence": round(cell.confidence, 4),
                "track": cell.track}

    def _stage(self, cell: Cell, frame: Frame) -> tuple[float, float]:
        return pixel_to_stage(cell.y, cell.x, shape=frame.shape, pixel_size_um=frame.pixel_size_um,
                              stage_x_um=frame.request.x_um, stage_y_um=frame.request.y_um,
                              orientation=self.s.orientation,
                              affine=self.s.affines_um.get(frame.request.objective))

    def _annotate(self, frame: Frame) -> tuple[Cell, ...]:
        """The frame's cells with stage coordinates, border distance and tracks."""
        f = self._follow
        return annotate(frame, self.s.orientation, self._nuclei,
                        followed=f.matched if f is not None else (),
                        reach_um=self.s.tracking.max_displacement_um,
                        affine=self.s.affines_um.get(frame.request.objective))

    def _end(self, event: str, f: _FollowUp, time_s: float, **extra: Any) -> dict[str, Any]:
        """The decision that ends a follow-up, with what it cost: frames, light (exposure ms
        summed), time since the trigger frame."""
        return self._decision(event, f, time_s, followup_frames=f.n_frames,
                              light_ms=round(f.light_ms, 3),
                              duration_s=round(time_s - f.trigger_frame.time_s, 4), **extra)

    def _decision(self, event: str, f: _FollowUp, time_s: float, **extra: Any) -> dict[str, Any]:
        return {"event": event, "time_s": round(time_s, 4), "position": f.origin.position_name,
                "trigger": f.trigger.name, "followup": f.id, **extra}

