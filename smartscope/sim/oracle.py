"""An ORACLE frame classifier for the simulator: the real detection, the simulator's truth as the
class of each nucleus.

Not a model: it answers what the simulated sample really holds, so a run with it shows what the
trigger logic and the protocol can achieve when the classifier is perfect (event-capture
benchmark, ``benchmarks/event_capture.py``). Everything else is the real path: the nuclei are
found (and, for the same cost per frame, classified) by ``classify_frame`` with the protocol's
model; then each nucleus takes the phase of the true cell nearest its centroid in that camera
frame, with confidence 1.

- A true phase the model has no class for: telophase is called anaphase when the model has an
  anaphase class (the five-class model's anaphase includes telophase), any other phase interphase
  (prophase in a model without it: not a mitotic target the model can name).
- A detection with no true cell within ``match_um`` (debris, a fragment that washed away) keeps
  the model's phase with confidence 0: it can never trigger.
- The camera frame is the newest one the simulator produced at that pixel size (within 10 %: a
  calibrated pixel size may differ a little from the simulator's) and image shape:
  the hook classifies each image before the next one that is classified is taken (screening,
  change_interval and confirmation frames are one at a time; z-stacks and bursts, taken in a row,
  are not classified).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from smartscope import phases
from smartscope.classify.cells import Cell, FrameClassifier

log = logging.getLogger(__name__)


class OracleClassifier:
    """``FrameClassifier`` that calls every detected nucleus by the simulator's truth.

    Parameters
    ----------
    sim : SimMicroscope
        The running simulated microscope (``ScopeHandle.sim``).
    detect : FrameClassifier
        The real detection + classification (``acquire.prepare.frame_classifier``); its cells are
        kept (position, area, border) and their class replaced.
    classes : sequence of str
        The model's classes (the oracle answers in them).
    match_um : float
        A nucleus whose centroid lies farther than this from every true centre is not a cell, um
        (about a nucleus radius: an anaphase's centre lies between its two chromatin masses).
    """

    def __init__(self, sim: Any, detect: FrameClassifier, classes: Sequence[str],
                 match_um: float = 9.0) -> None:
        self.sim = sim
        self.detect = detect
        self.classes = tuple(classes)
        self.match_um = float(match_um)
        self.frames = 0
        """Frames classified."""
        self.unmatched = 0
        """Detections with no true cell within ``match_um`` (given confidence 0)."""

    def class_of(self, true_phase: str) -> str:
        """The model class the oracle answers for a true phase."""
        if true_phase in self.classes:
            return true_phase
        if true_phase == phases.TELOPHASE and phases.ANAPHASE in self.classes:
            return phases.ANAPHASE
        return phases.INTERPHASE if phases.INTERPHASE in self.classes else self.classes[0]

    def __call__(self, image: np.ndarray, pixel_size_um: float) -> Sequence[Cell]:
        cells = self.detect(image, pixel_size_um)
        shape = (int(image.shape[-2]), int(image.shape[-1]))
        record = self._camera_frame(pixel_size_um, shape)
        truth = (self.sim.truth(frame=record, in_view=True) if record is not None
                 else self.sim.truth(in_view=True))
        self.frames += 1
        out = []
        for c in cells:
            best, best_d = None, math.inf
            for t in truth:
                if t.col_px is None or t.row_px is None:
                    continue
                d = math.hypot(t.col_px - c.x, t.row_px - c.y) * pixel_size_um
                if d < best_d:
                    best, best_d = t, d
            if best is None or best_d > self.match_um:
                self.unmatched += 1
                out.append(replace(c, confidence=0.0,
                                   probabilities=dict.fromkeys(self.classes, 0.0)))
                continue
            phase = self.class_of(best.phase)
            out.append(replace(c, phase=phase, confidence=1.0, probabilities={
                k: float(k == phase) for k in self.classes}))
        return out

    def _camera_frame(self, pixel_size_um: float, shape: tuple[int, int]) -> Any:
        objectives = self.sim.config.objectives
        for rec in reversed(self.sim.frames):
            ps = objectives[rec.view.objective].pixel_size_um
            if tuple(rec.view.shape) == shape and math.isclose(ps, pixel_size_um, rel_tol=0.1):
                return rec
        log.warning("oracle: no camera frame of %s px at %.4f um/px; using the sample now",
                    shape, pixel_size_um)
        return None
