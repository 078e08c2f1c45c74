"""Classify every nucleus of one frame: detect -> crop -> normalise -> one batched prediction.

This is what the acquisition hook calls once per screening frame; it returns plain numbers and
strings (no TensorFlow, no pycromanager) with a timing breakdown for the hook's latency budget.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from smartscope.classify.cells import Cell
from smartscope.vision.crops import prepare_crops
from smartscope.vision.detect import DEFAULT_DIAMETER_UM, Nuclei, check_frame, find_nuclei

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """What ``classify_frame`` needs from a classifier (``Classifier`` satisfies it)."""

    @property
    def classes(self) -> tuple[str, ...]: ...

    @property
    def input_size(self) -> int: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class FrameResult:
    """Every nucleus of one frame with its class probabilities.

    Attributes
    ----------
    nuclei : Nuclei
        The detections (centroids, areas, intensities, optional label image).
    classes : tuple of str
        Class names, in the order of the probability columns.
    probabilities : float32 array, shape (N, K)
    timings_ms : dict of str to float
        Wall time of the steps: detect, crop, classify, total.
    """

    nuclei: Nuclei
    classes: tuple[str, ...]
    probabilities: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.nuclei)

    @property
    def phase_index(self) -> np.ndarray:
        """Index of the most probable class per nucleus, (N,) int."""
        return np.argmax(self.probabilities, axis=1) if len(self) else np.zeros(0, int)

    @property
    def phases(self) -> tuple[str, ...]:
        """The most probable class per nucleus."""
        return tuple(self.classes[i] for i in self.phase_index)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the most probable class per nucleus, (N,) float32."""
        if not len(self):
            return np.zeros(0, np.float32)
        return self.probabilities[np.arange(len(self)), self.phase_index]

    @property
    def cells(self) -> tuple[Cell, ...]:
        """One ``Cell`` per nucleus."""
        nu = self.nuclei
        phases, conf = self.phases, self.confidence
        return tuple(
            Cell(
                index=i,
                y=float(nu.y[i]),
                x=float(nu.x[i]),
                area_um2=float(nu.area_um2[i]),
                phase=phases[i],
                confidence=float(conf[i]),
                probabilities={c: float(p) for c, p in zip(self.classes, self.probabilities[i],
                                                           strict=True)},
                touches_edge=bool(nu.touches_edge[i]),
            )
            for i in range(len(self))
        )

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per nucleus (see ``Cell.to_dict``), e.g. for a CSV writer."""
        return [cell.to_dict() for cell in self.cells]

    def count(self, phase: str, min_confidence: float = 0.0) -> int:
        """Number of nuclei classified as ``phase`` with at least ``min_confidence``."""
        if phase not in self.classes:
            return 0
        k = self.classes.index(phase)
        return int(np.sum((self.phase_index == k) & (self.confidence >= min_confidence)))


def classify_frame(
    image: np.ndarray,
    pixel_size_um: float,
    classifier: Predictor,
    diameter_um: float = DEFAULT_DIAMETER_UM,
    *,
    crop_um: float | None = None,
    nuclei: Nuclei | None = None,
    return_labels: bool = False,
) -> FrameResult:
    """Find, crop and classify every nucleus of one raw frame.

    Parameters
    ----------
    image : 2-D array
        Raw camera frame (any size, offset included).
    pixel_size_um : float
        Pixel size of the frame, um.
    classifier : Classifier
        A loaded model bundle (anything with ``classes``, ``input_size`` and ``predict``).
    diameter_um : float
        Expected nucleus diameter, um (detection scale and size filter).
    crop_um : float or None
        Physical crop side; None uses the model card's (``Classifier.card.input.crop_um``).
    nuclei : Nuclei or None
        Detections to classify instead of running ``find_nuclei``.
    return_labels : bool
        Keep the label image in ``result.nuclei.labels`` (for overlays).

    Returns
    -------
    FrameResult

    Raises
    ------
    ImageError
        If the frame is unusable (see ``find_nuclei``).
    ModelBundleError
        If the classifier rejects the crops.
    """
    t0 = time.perf_counter()
    frame = check_frame(image)  # once: detection and crops take it as validated
    if nuclei is None:
        nuclei = find_nuclei(frame, pixel_size_um, diameter_um, return_labels=return_labels,
                             checked=True)
    t1 = time.perf_counter()
    if crop_um is None:
        card = getattr(classifier, "card", None)
        crop_um = card.input.crop_um if card is not None else None
    kwargs = {} if crop_um is None else {"crop_um": crop_um}
    crops = prepare_crops(
        frame, nuclei.y, nuclei.x, pixel_size_um, size=classifier.input_size, checked=True,
        **kwargs,
    )
    t2 = time.perf_counter()
    probs = classifier.predict(crops)
    t3 = time.perf_counter()
    timings = {
        "detect": 1e3 * (t1 - t0),
        "crop": 1e3 * (t2 - t1),
        "classify": 1e3 * (t3 - t2),
        "total": 1e3 * (t3 - t0),
    }
    log.debug("%d nuclei classified in %.1f ms", len(nuclei), timings["total"])
    return FrameResult(nuclei, tuple(classifier.classes), probs, timings)
