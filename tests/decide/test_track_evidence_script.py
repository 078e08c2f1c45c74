"""The track-evidence analysis (scripts/track_evidence_rules.py): rules replayed on known
tracks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def te():
    spec = importlib.util.spec_from_file_location("track_evidence_rules",
                                                  SCRIPTS / "track_evidence_rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["track_evidence_rules"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("track_evidence_rules", None)


def row(frame: int, track: int, p_meta: float, called: str, cell: str, truth: str,
        eligible: bool = True) -> dict[str, Any]:
    probs = {"interphase": 0.0, "prometaphase": 0.0, "metaphase": p_meta,
             "anaphase": 1.0 - p_meta, "apoptosis": 0.0}
    return {"position": 0, "frame": frame, "time_s": 2.0 * frame, "track": track,
            "eligible": eligible, "phase": called, "probabilities": probs, "truth_cell": cell,
            "truth_phase": truth}


def test_probability_rule_catches_an_uncalled_metaphase_the_called_rule_misses(te):
    # cell a: truly metaphase, p 0.3 in every frame but called anaphase; cell b: a prometaphase
    # called metaphase at 0.8
    rows = [row(k, 1, 0.3, "anaphase", "a", "metaphase") for k in range(4)]
    rows += [row(k, 2, 0.8, "metaphase", "b", "prometaphase") for k in range(4)]
    runs = [{"seed": 0, "rows": rows, "episodes": [{"cell": "a", "start_s": 0.0,
                                                     "end_s": 10.0}]}]
    called = te.first_crossings(runs, te.each(2, True), "metaphase", [0.25])[0]
    p_only = te.first_crossings(runs, te.each(2, False), "metaphase", [0.25])[0]
    assert (called["fires"], called["right"], called["caught"]) == (1, 0, 0)
    assert (p_only["fires"], p_only["right"], p_only["caught"]) == (2, 1, 1)
    # once per track: four frames over the threshold fire once
    assert te.first_crossings(runs, te.mean(2, False), "metaphase", [0.5])[0]["fires"] == 1


def test_between_cells_share(te):
    # two metaphase cells whose frames agree exactly: all the spread is between the cells
    rows = [row(k, 1, 0.3, "anaphase", "a", "metaphase") for k in range(3)]
    rows += [row(k, 2, 0.6, "metaphase", "b", "metaphase") for k in range(3)]
    share = te.between_cells_share([{"seed": 0, "rows": rows}], "metaphase", truth_target=True)
    assert share["cells"] == 2 and share["frames"] == 6
    assert share["between_share"] == pytest.approx(1.0)
    assert share["within_sd"] == pytest.approx(0.0)
    # frames that disagree within a cell (0.1 / 0.5, twice) and cells with the same mean: none
    rows = [row(k, 1, (0.1, 0.5)[k % 2], "anaphase", "ab"[k // 2], "metaphase")
            for k in range(4)]
    share = te.between_cells_share([{"seed": 0, "rows": rows}], "metaphase", truth_target=True)
    assert share["between_share"] == pytest.approx(0.0)


def test_two_cells_alternating_are_not_pooled(te):
    # cells a and b in alternate frames, each on its own track: no track is seen in two
    # consecutive frames, so a two-frame rule never fires, a one-frame rule fires on both
    rows = [row(k, 1 + k % 2, 0.9, "metaphase", "ab"[k % 2], "metaphase") for k in range(6)]
    runs = [{"seed": 0, "rows": rows, "episodes": []}]
    for stat in (te.each(2, True), te.each(2, False), te.mean(2, True)):
        assert te.first_crossings(runs, stat, "metaphase", [0.5])[0]["fires"] == 0
    assert te.first_crossings(runs, te.each(1, True), "metaphase", [0.5])[0]["fires"] == 2


def test_a_frame_not_eligible_breaks_the_window(te):
    rows = [row(0, 1, 0.9, "metaphase", "a", "metaphase"),
            row(1, 1, 0.9, "metaphase", "a", "metaphase", eligible=False),
            row(2, 1, 0.9, "metaphase", "a", "metaphase")]
    runs = [{"seed": 0, "rows": rows, "episodes": []}]
    assert te.first_crossings(runs, te.each(2, True), "metaphase", [0.5])[0]["fires"] == 0
