"""Where event capture loses target episodes, and what the false triggers were on.

``score_run`` says how many target-phase episodes were caught; ``explain_losses`` says, for each
one that was not, the first stage of the chain from the cell to a follow-up where it was lost:

1. ``not_screened_busy``: no screening frame of its field while it was in the phase, and the
   microscope was busy in a follow-up during part of the episode;
2. ``not_screened``: no screening frame of its field while it was in the phase, the microscope
   was not busy (the episode fell between two frames, or at the end of the run);
3. ``run_edge``: the episode lies partly outside the run (under way at its start, or still
   going at its end) and fewer than ``consecutive_frames`` screening frames of its field fell in
   it: the run's window, not the trigger, left no chance;
4. ``not_detected``: screened, but no detected nucleus within ``match_um`` of the cell;
5. ``edge_or_size``: detected, but never eligible (``edge_margin_um``, area filters);
6. ``below_threshold``: eligible, but never called a target phase at ``min_confidence``;
7. ``not_consecutive``: called, but never in ``consecutive_frames`` screening frames in a row
   (on the same track, with ``persistence: cell``) while in the phase; with ``evidence: mean``,
   its probability reached ``min_confidence`` in some frame but the mean over its last
   ``consecutive_frames`` frames never did while it was called the phase;
8. ``busy_other_cell``: the call held long enough, but in that frame a trigger fired on another
   cell (one follow-up at a time), and no later frame of the episode fired on this one;
9. ``blocked``: the call held long enough, but the trigger did not fire (its cooldown, its
   ``max_followups``, or the track counted as followed already);
10. ``confirm_rejected`` / ``refused``: a trigger on this cell while in the phase, rejected by the
    ``confirm`` step / refused (stage limits);
11. ``left_phase``: a trigger on this cell while in the phase, but it had left the phase when
    the follow-up began (its confirmation; a confirm step that rejected it then was right);
12. ``caught``.

The chain is checked on the screening frames of the episode's field between its start and end
(the frames the hook decided on, with the cells as the planner saw them: stage position, border
distance, track). The persistence count is rebuilt from those frames, per cell (the detection
nearest the true cell in each frame) and, with ``persistence: cell``, on one track; frames before
the episode count towards it (a call that started before the phase did counts, as it does for the
trigger). The false triggers are counted by true phase in
``TriggerScore.wrong_by_phase``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from smartscope.classify.cells import Cell
from smartscope.decide.capture import Episode, FollowUpRecord, TrueCell
from smartscope.decide.triggers import eligible, phase_score
from smartscope.protocol import Trigger

log = logging.getLogger(__name__)

#: Loss stages in the order they are checked (see the module docstring).
STAGES = ("not_screened_busy", "not_screened", "run_edge", "not_detected", "edge_or_size",
          "below_threshold", "not_consecutive", "busy_other_cell", "blocked", "confirm_rejected",
          "refused", "left_phase", "caught")


@dataclass(frozen=True)
class ScreenView:
    """One screening frame as the planner saw it: its field (position name), run time and cells
    (with stage coordinates, border distance and track)."""

    position: str
    time_s: float
    cells: tuple[Cell, ...]
    index: int | None = None
    """The frame's index in the run (decision records name it), when known."""


@dataclass(frozen=True)
class _Busy:
    """A follow-up: from its trigger to its end (run s), the frame that fired it, its cell."""

    start_s: float
    end_s: float
    frame: int | None
    cell: str | None

    def started_at(self, view: ScreenView) -> bool:
        """Whether this follow-up was fired by that screening frame (by index when both are
        known, else by time: records keep 4 decimals)."""
        if self.frame is not None and view.index is not None:
            return self.frame == view.index
        return abs(self.start_s - view.time_s) < 1e-3


#: (cell id, run time s) -> the true cell then, or None when it is not on the slide any more
FindCell = Callable[[str, float], TrueCell | None]


def explain_losses(
    trigger: Trigger,
    episodes: Sequence[Episode],
    caught: Collection[tuple[str, float]],
    views: Sequence[ScreenView],
    followups: Sequence[FollowUpRecord],
    find: FindCell,
    match_um: float = 9.0,
) -> dict[str, int]:
    """Count each episode of one trigger at the stage where it was lost (see module docstring).

    Parameters
    ----------
    trigger : Trigger
        The trigger as it ran (confidence, eligibility, persistence).
    episodes : sequence of Episode
        Its target-phase episodes (``TriggerScore.episode_list``).
    caught : collection of (cell, start_s)
        The episodes it caught (``TriggerScore.caught_keys``).
    views : sequence of ScreenView
        Every screening frame of the run, in time order.
    followups : sequence of FollowUpRecord
        Every trigger of the run (all triggers: any follow-up keeps the microscope busy), with
        their truth (``TriggerScore.records`` of ``"all"``).
    find : callable
        (cell id, run s) -> the true cell (position, phase) then, or None.
    match_um : float
        A detection within this of the true centre is the cell's, um.

    Returns
    -------
    dict of str to int
        Episodes per stage of ``STAGES`` (every stage present, zeros included).
    """
    out = dict.fromkeys(STAGES, 0)
    busy = [_Busy(f.time_s, f.time_s + max(f.duration_s, 0.0), f.frame, f.truth_cell)
            for f in followups]
    mine = [f for f in followups if f.trigger == trigger.name]
    by_field: dict[str, list[ScreenView]] = {}
    for v in sorted(views, key=lambda v: v.time_s):
        by_field.setdefault(v.position, []).append(v)
    for ep in episodes:
        here = by_field.get(ep.position, [])
        stage = _stage(trigger, ep, (ep.cell, ep.start_s) in caught, here, mine, busy, find,
                       match_um)
        out[stage] += 1
        if stage != "caught" and log.isEnabledFor(logging.DEBUG):
            frames = [v for v in here if v.time_s <= ep.end_s][-8:]
            seen = [(round(v.time_s, 2), None if c is None else (
                c.phase, round(c.confidence, 2), c.track, round(c.edge_um, 1)))
                for v in frames for c in [_detection(v, ep.cell, find, match_um)]]
            log.debug("%s: episode of cell %s at %s, %.2f-%.2f s: %s; frames (time, (call, "
                      "confidence, track, edge um), the last 8): %s", trigger.name, ep.cell,
                      ep.position, ep.start_s, ep.end_s, stage, seen)
    return out


def _stage(trigger: Trigger, ep: Episode, caught: bool,
           views: Sequence[ScreenView], mine: Sequence[FollowUpRecord],
           busy: Sequence[_Busy], find: FindCell, match_um: float) -> str:
    if caught:
        return "caught"
    on_cell = [f for f in mine if f.truth_cell == ep.cell and ep.start_s <= f.time_s <= ep.end_s]
    rejected = [f for f in on_cell if f.outcome == "not_confirmed"]
    if rejected:  # by the time of the confirmation frame the cell may have left the phase
        out = all(f.time_s + f.duration_s > ep.end_s for f in rejected)
        return "left_phase" if out else "confirm_rejected"
    if any(f.outcome == "refused" for f in on_cell):
        return "refused"
    if any(f.went_ahead and f.imaged_s > ep.end_s for f in on_cell):
        return "left_phase"
    inside = [v for v in views if ep.start_s <= v.time_s <= ep.end_s]
    if not inside:
        overlap = any(b.start_s < ep.end_s and b.end_s > ep.start_s for b in busy)
        return "not_screened_busy" if overlap else "not_screened"
    cut = views[-1].time_s <= ep.end_s or views[0].time_s >= ep.start_s
    if len(inside) < trigger.consecutive_frames and cut:
        return "run_edge"
    # the cell's detection in every frame of its field up to the end of the episode
    history = [(v, _detection(v, ep.cell, find, match_um)) for v in views
               if v.time_s <= ep.end_s]
    seen = [(v, c) for v, c in history if c is not None and v.time_s >= ep.start_s]
    if not seen:
        return "not_detected"
    ok = [(v, c) for v, c in seen if eligible(trigger, c)]
    if not ok:
        return "edge_or_size"
    mean = trigger.evidence == "mean"
    if not any(phase_score(trigger, c) >= trigger.min_confidence if mean else
               _called(trigger, c) for _, c in ok):
        return "below_threshold"
    held = _held_mean(trigger, history, ep) if mean else _held_each(trigger, history, ep)
    if not held:
        return "not_consecutive"
    other = any(b.started_at(held[-1]) and b.cell != ep.cell for b in busy)
    return "busy_other_cell" if other else "blocked"


def _held_each(trigger: Trigger, history: Sequence[tuple[ScreenView, Cell | None]],
               ep: Episode) -> list[ScreenView]:
    """Frames of the episode in which the call had held ``consecutive_frames`` in a row."""
    streak, track, held = 0, None, []
    for v, c in history:
        hit = c is not None and eligible(trigger, c) and _called(trigger, c)
        same = trigger.persistence == "field" or c is None or streak == 0 or (
            c.track is not None and c.track == track)
        streak = (streak + 1 if same else 1) if hit else 0
        track = c.track if hit and c is not None else None
        if v.time_s >= ep.start_s and streak >= trigger.consecutive_frames:
            held.append(v)
    return held


def _held_mean(trigger: Trigger, history: Sequence[tuple[ScreenView, Cell | None]],
               ep: Episode) -> list[ScreenView]:
    """``evidence: mean``: frames of the episode in which the cell was called the phase and its
    track's mean probability over its last ``consecutive_frames`` eligible frames reached
    ``min_confidence``."""
    n, track = trigger.consecutive_frames, None
    window: list[float] = []
    held: list[ScreenView] = []
    for v, c in history:
        if c is None or not eligible(trigger, c):
            window, track = [], None
            continue
        if c.track is None or c.track != track:
            window = []
        track = c.track
        window = [*window, phase_score(trigger, c)][-n:]
        if (v.time_s >= ep.start_s and len(window) >= n and c.phase in trigger.phase
                and sum(window) / n >= trigger.min_confidence):
            held.append(v)
    return held


def _called(trigger: Trigger, cell: Cell) -> bool:
    return cell.phase in trigger.phase and cell.confidence >= trigger.min_confidence


def _detection(view: ScreenView, cell_id: str, find: FindCell, match_um: float) -> Cell | None:
    """The detected nucleus nearest the true cell in a frame (None: none within ``match_um``)."""
    true = find(cell_id, view.time_s)
    if true is None:
        return None
    best, best_d2 = None, match_um ** 2
    for c in view.cells:
        if c.x_um is None or c.y_um is None:
            continue
        d2 = (c.x_um - true.x_um) ** 2 + (c.y_um - true.y_um) ** 2
        if d2 <= best_d2:
            best, best_d2 = c, d2
    return best
