"""Event capture of a simulated run: the run's triggers scored against the simulator's truth.

``SimCapture`` watches the frames the hook decided on (an observer), and at the end of the run
pairs them with the simulator's camera frames to map run seconds to sim seconds, builds the
screened fields, and scores the decisions with ``smartscope.decide.capture.score_run``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from smartscope.decide import SCREEN, Frame, ScreenedField, score_run, summarise
from smartscope.decide.capture import TriggerScore
from smartscope.decide.diagnose import ScreenView, explain_losses
from smartscope.protocol import Position, Trigger

log = logging.getLogger(__name__)

#: A stage position of a hook frame and of a camera frame agree within this, um.
_SAME_PLACE_UM = 0.5


class SimCapture:
    """Collects what scoring a simulated run needs; ``score`` at the end.

    Parameters
    ----------
    sim : SimMicroscope
        The running simulator (its camera frames and sample are the truth).
    triggers : sequence of Trigger
    positions : sequence of Position
        The screening positions (as resolved for the run).
    classes : collection of str
        The model's classes.
    """

    def __init__(self, sim: Any, triggers: Sequence[Trigger], positions: Sequence[Position],
                 classes: Collection[str]) -> None:
        self.sim = sim
        self.triggers = {t.name: t.phase for t in triggers}
        self.trigger_settings = {t.name: t for t in triggers}
        self.positions = tuple(positions)
        self.classes = tuple(classes)
        self.frames: list[Frame] = []

    def __call__(self, frame: Frame) -> None:
        """Observer: remember a decided frame."""
        self.frames.append(frame)

    def fields(self) -> list[ScreenedField]:
        """Each screening position's field of view, from its screening frames."""
        size: dict[int, tuple[float, float]] = {}
        for f in self.frames:
            if f.request.mode == SCREEN:
                size[f.request.position] = (f.shape[1] * f.pixel_size_um,
                                            f.shape[0] * f.pixel_size_um)
        out = []
        for i, pos in enumerate(self.positions):
            if i in size:
                out.append(ScreenedField(pos.name or f"pos{i}", pos.x_um, pos.y_um, *size[i]))
        return out

    def time_pairs(self) -> list[tuple[float, float]]:
        """(run s, sim s) of the hook's frames, paired with the camera's frames in order (the
        last frame of each is the same image) and kept where objective and stage agree."""
        cam = list(self.sim.frames)
        if not cam or not self.frames:
            return []
        shift = cam[-1].index - self.frames[-1].index
        by_index = {c.index: c for c in cam}
        pairs = []
        for f in self.frames:
            c = by_index.get(f.index + shift)
            if c is None:
                continue
            v = c.view
            if (v.objective == f.request.objective
                    and abs(v.stage_x_um - f.request.x_um) <= _SAME_PLACE_UM
                    and abs(v.stage_y_um - f.request.y_um) <= _SAME_PLACE_UM):
                pairs.append((f.time_s, c.t_s))
        return pairs

    def scores(self, decisions: Sequence[Mapping[str, Any]]) -> dict[str, TriggerScore] | None:
        """Score the run's decisions; None when nothing can be scored (no trigger, no frame, or
        the frames could not be paired with the camera's)."""
        from smartscope.sim.truth import SimTruth, TimeMap

        if not self.triggers or not self.frames:
            return None
        pairs = self.time_pairs()
        if not pairs:
            log.warning("event capture not scored: the hook's frames do not match the "
                        "simulator's camera frames")
            return None
        tmap = TimeMap.fit(pairs, scale=float(self.sim.config.time_scale))
        truth = SimTruth(lambda t: self.sim.truth(t_s=t), tmap)
        times = [f.time_s for f in self.frames]
        scores = score_run(decisions, self.triggers, truth, self.fields(), min(times),
                           max(times), self.classes)
        self.explain(scores, truth)
        return scores

    def explain(self, scores: Mapping[str, TriggerScore], truth: Any) -> None:
        """Fill each trigger's ``losses`` (where its missed episodes were lost,
        ``smartscope.decide.diagnose``) and sum them into ``"all"``."""
        names = {i: p.name or f"pos{i}" for i, p in enumerate(self.positions)}
        views = [ScreenView(names.get(f.request.position, f.request.position_name), f.time_s,
                            f.cells, f.index) for f in self.frames
                 if f.request.mode == SCREEN and f.cells is not None]
        every = scores["all"].records if "all" in scores else []
        total: dict[str, int] = {}
        for name, trig in self.trigger_settings.items():
            s = scores.get(name)
            if s is None:
                continue
            s.losses = explain_losses(trig, s.episode_list, s.caught_keys, views, every, truth.find,
                                      truth.match_um)
            for k, v in s.losses.items():
                total[k] = total.get(k, 0) + v
        if "all" in scores:
            scores["all"].losses = total

    def summary(self, decisions: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """JSON-ready figures of ``scores`` (see ``smartscope.decide.capture``)."""
        scores = self.scores(decisions)
        return summarise(scores) if scores is not None else None
