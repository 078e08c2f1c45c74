"""The frames of a follow-up program's actions: centring on the cell (objective switch, parfocal
focus offset, stage-limit check), ``change_interval`` time points, z-stacks and bursts.

``FollowUpActions`` is a part of ``smartscope.decide.plan.Planner``, kept apart so the planner's
module holds the screening and the order of a program's actions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from smartscope.decide.geometry import check_target
from smartscope.decide.records import CentreTarget, Decision, DecisionEvent
from smartscope.decide.requests import FrameRequest
from smartscope.decide.steps import Draft, FollowUp, Frame
from smartscope.protocol import Burst, CentreOnCell, ChangeInterval, ZStack

if TYPE_CHECKING:
    from typing import Any

    from smartscope.decide.plan import PlanSettings


class FollowUpActions:
    """Per-action request building of ``Planner`` (see the module docstring)."""

    s: PlanSettings
    _follow_time: int

    if TYPE_CHECKING:
        def _on_time(self, due_s: float, what: str, interval_s: float) -> float: ...

        def _emit(self, step: Draft, requests: list[FrameRequest]) -> None: ...

        def _decision(self, event: DecisionEvent, f: FollowUp, time_s: float,
                      **extra: Any) -> Decision: ...

    def _centre(self, f: FollowUp, action: CentreOnCell, step: Draft) -> str | None:
        cell = f.cell
        if f.centred:  # a second centring in the same program: the cell is at the centre already
            return self._move(f, action.objective, f.state.x_um, f.state.y_um)[0]
        # the cell's stage position was computed once, at the trigger frame's stage position,
        # where the follow-up still is (nothing moved the stage before the first centring)
        assert cell.x_um is not None and cell.y_um is not None
        x, y = cell.x_um, cell.y_um
        objective = action.objective or f.state.objective
        why, z = self._move(f, objective, x, y)
        f.centred = why is None
        step.target(CentreTarget(objective=objective, x_um=x, y_um=y, z_um=z, cell_y_px=cell.y,
                                 cell_x_px=cell.x, refused=why))
        return why

    def _move(self, f: FollowUp, objective_name: str | None, x: float,
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
        self, f: FollowUp, action: ChangeInterval, frame: Frame, step: Draft
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
                step.add(self._decision(
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
        self._emit(step, reqs)
        return True

    def _stack_or_burst(
        self, f: FollowUp, action: ZStack | Burst, now_s: float
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
