"""One classified nucleus (``Cell``) and what a frame classifier promises (``FrameClassifier``).

A ``Cell`` is made once per nucleus by the classifier (pixel position, area, class
probabilities). The acquisition hook gives it its stage position once (``Cell.at_stage``); the
planner adds its track and distance to the border; the same type goes to the trigger rules, the
planner's decisions and ``cells.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class Cell:
    """One classified nucleus.

    Attributes
    ----------
    y, x : float
        Centroid in pixels (row, column) of the frame.
    phase : str
        The most probable class.
    confidence : float
        Its probability, in [0, 1].
    area_um2 : float
        Nucleus area, um^2 (0 when the classifier does not measure it).
    probabilities : mapping of str to float
        Every class' probability (empty when the classifier gives only the phase).
    touches_edge : bool
        The nucleus touches the frame border (it may be cut off).
    index : int
        Position in the frame's result.
    x_um, y_um : float or None
        Stage position of the centroid, um (None until the hook places the cell, see
        ``at_stage``).
    track : int or None
        Track id of the nucleus (set by the planner: screening frames; the followed cell in
        follow-up frames).
    parent : int or None
        Mother's track id, for the second half of a division.
    edge_um : float
        Distance from the centroid to the nearest image border, um (inf until the planner sets
        it).
    """

    y: float
    x: float
    phase: str
    confidence: float
    area_um2: float = 0.0
    probabilities: Mapping[str, float] = field(default_factory=dict)
    touches_edge: bool = False
    index: int = 0
    x_um: float | None = None
    y_um: float | None = None
    track: int | None = None
    parent: int | None = None
    edge_um: float = math.inf

    def at_stage(self, x_um: float, y_um: float) -> Cell:
        """The same cell with its stage position (um) set."""
        return replace(self, x_um=x_um, y_um=y_um)

    def to_dict(self) -> dict[str, Any]:
        """Flat row: cell, y, x, area_um2, phase, confidence, touches_edge, p_<class>..."""
        row: dict[str, Any] = {
            "cell": self.index,
            "y": round(self.y, 2),
            "x": round(self.x, 2),
            "area_um2": round(self.area_um2, 2),
            "phase": self.phase,
            "confidence": round(self.confidence, 4),
            "touches_edge": self.touches_edge,
        }
        row.update({f"p_{k}": round(v, 4) for k, v in self.probabilities.items()})
        return row


class FrameClassifier(Protocol):
    """Finds and classifies the nuclei of one image: what the acquisition hook calls per frame.

    ``smartscope.acquire.prepare.frame_classifier`` builds one from a model bundle; any callable
    with this signature can replace it (e.g. ground-truth labels on the simulator).
    """

    def __call__(self, image: np.ndarray, pixel_size_um: float) -> Sequence[Cell]:
        """The cells of ``image`` (pixel size ``pixel_size_um``, um/px), in pixel coordinates."""
        ...
