"""The ORACLE classifier: real detection on a real simulated frame, the simulator's truth as
the class (what the event-capture benchmark compares the model with)."""

from __future__ import annotations

import math

import pytest

from smartscope.classify.cells import Cell
from smartscope.sim import ManualClock, SimConfig, start
from smartscope.sim.oracle import OracleClassifier
from smartscope.vision.detect import find_nuclei

CLASSES = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")


def detect_only(image, pixel_size_um):
    """The real detection (the oracle replaces whatever class a model would give)."""
    n = find_nuclei(image, pixel_size_um)
    return [Cell(float(y), float(x), "interphase", 0.5, index=i)
            for i, (y, x) in enumerate(zip(n.y, n.x, strict=True))]


def test_class_of_maps_truth_onto_the_model_classes():
    o = OracleClassifier(None, detect_only, CLASSES)
    assert o.class_of("metaphase") == "metaphase"
    assert o.class_of("telophase") == "anaphase"
    assert o.class_of("prophase") == "interphase"
    four = OracleClassifier(None, detect_only, ("interphase", "metaphase", "anaphase"))
    assert four.class_of("apoptosis") == "interphase"


@pytest.mark.parametrize("objective", ["10x", "60x"])
def test_oracle_calls_each_nucleus_by_the_true_cell_under_it(objective):
    cfg = SimConfig(seed=2, n_cells=600, sensor_px=512, real_exposure_time=False,
                    start_objective=objective)
    with start(cfg, clock=ManualClock(3600.0)) as scope:
        scope.core.snapImage()
        image = scope.core.getImage()
        ps = cfg.objectives[objective].pixel_size_um
        oracle = OracleClassifier(scope, detect_only, CLASSES)
        cells = oracle(image, ps)
        truth = scope.truth(frame=scope.frames[-1], in_view=True)
    assert cells and oracle.frames == 1
    for c in cells:
        near = min(truth, key=lambda t: (t.col_px - c.x) ** 2 + (t.row_px - c.y) ** 2)
        d_um = math.hypot(near.col_px - c.x, near.row_px - c.y) * ps
        if d_um <= oracle.match_um:
            assert (c.phase, c.confidence) == (oracle.class_of(near.phase), 1.0)
            assert c.probabilities[c.phase] == 1.0
        else:
            assert c.confidence == 0.0
