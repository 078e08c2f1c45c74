"""Trigger rules: confidence, cell count, persistence, cooldown, first match wins."""

from __future__ import annotations

import pytest

from smartscope.decide import Cell, TriggerTracker, matching_cells
from smartscope.protocol import Trigger

STOP = [{"type": "stop"}]


def trig(**kw) -> Trigger:
    return Trigger.model_validate({"name": "t", "phase": "metaphase", "actions": STOP, **kw})


META = Cell(10, 10, "metaphase", 0.9, track=1)
WEAK = Cell(20, 20, "metaphase", 0.5, track=2)
INTER = Cell(30, 30, "interphase", 0.99, track=3)


def test_matching_filters_and_sorts():
    t = trig(min_confidence=0.4)
    assert matching_cells(t, [WEAK, INTER, META]) == [META, WEAK]
    assert matching_cells(trig(min_confidence=0.8), [WEAK, INTER]) == []


def test_min_cells():
    tr = TriggerTracker([trig(min_cells=2, min_confidence=0.4)])
    assert tr.update(0, 0.0, [META]) is None
    fired = tr.update(0, 1.0, [META, WEAK])
    assert fired is not None and len(fired[1]) == 2


def test_consecutive_frames_reset_on_miss():
    tr = TriggerTracker([trig(consecutive_frames=2)])
    assert tr.update(0, 0.0, [META]) is None
    assert tr.update(0, 1.0, [INTER]) is None  # streak broken
    assert tr.update(0, 2.0, [META]) is None
    assert tr.update(0, 3.0, [META]) is not None


def test_persistence_is_per_position():
    tr = TriggerTracker([trig(consecutive_frames=2)])
    assert tr.update(0, 0.0, [META]) is None
    assert tr.update(1, 0.5, [META]) is None
    assert tr.update(0, 1.0, [META]) is not None
    assert tr.count("t", 1) == 1


def test_cooldown():
    tr = TriggerTracker([trig(cooldown_s=10, once_per_cell=False)])
    assert tr.update(0, 0.0, [META]) is not None
    assert tr.update(0, 5.0, [META]) is None
    assert tr.update(0, 9.9, [META]) is None
    assert tr.update(0, 10.0, [META]) is not None


def test_first_trigger_wins():
    a = Trigger.model_validate({"name": "a", "phase": "anaphase", "actions": STOP})
    b = Trigger.model_validate({"name": "b", "phase": ["metaphase", "anaphase"],
                                "actions": STOP})
    c = Trigger.model_validate({"name": "c", "phase": "metaphase", "actions": STOP})
    tr = TriggerTracker([a, b, c])
    fired = tr.update(0, 0.0, [META])
    assert fired is not None and fired[0].name == "b"


def test_consecutive_frames_count_the_same_cell_not_the_field():
    """Two different cells alternate in metaphase: no cell matches two frames in a row."""
    a = Cell(10, 10, "metaphase", 0.9, track=1)
    b = Cell(90, 90, "metaphase", 0.9, track=2)
    a_int, b_int = (Cell(c.y, c.x, "interphase", 0.9, track=c.track) for c in (a, b))
    frames = [[a, b_int], [a_int, b], [a, b_int], [a_int, b]]
    per_cell = TriggerTracker([trig(consecutive_frames=2)])
    assert all(per_cell.update(0, float(t), f) is None for t, f in enumerate(frames))
    per_field = TriggerTracker([trig(consecutive_frames=2, persistence="field")])
    assert [per_field.update(0, float(t), f) is not None for t, f in enumerate(frames)] == [
        False, True, False, True]
    # the same cell twice in a row does fire
    assert per_cell.update(0, 9.0, [a_int, b]) is not None


def test_followed_track_is_not_followed_again_unless_asked():
    once = TriggerTracker([trig()])
    assert once.update(0, 0.0, [META]) is not None
    once.mark_followed("t", [META.track])
    assert once.update(0, 1.0, [META]) is None and once.update(0, 2.0, [META]) is None
    assert once.update(0, 3.0, [META, Cell(50, 50, "metaphase", 0.9, track=7)]) is not None
    again = TriggerTracker([trig(once_per_cell=False)])
    assert again.update(0, 0.0, [META]) is not None
    again.mark_followed("t", [META.track])
    assert again.update(0, 1.0, [META]) is not None


def test_max_followups_caps_a_trigger():
    tr = TriggerTracker([trig(max_followups=2, once_per_cell=False)])
    fired = [tr.update(0, float(t), [META]) is not None for t in range(5)]
    assert fired == [True, True, False, False, False] and tr.fired("t") == 2


def test_edge_and_area_filters():
    t = trig(edge_margin_um=10, min_area_um2=50, max_area_um2=300)
    near_edge = Cell(1, 500, "metaphase", 0.99, 100.0, track=1, edge_um=2.0)
    small = Cell(500, 500, "metaphase", 0.99, 20.0, track=2, edge_um=300.0)
    big = Cell(500, 500, "metaphase", 0.99, 400.0, track=3, edge_um=300.0)
    fine = Cell(500, 500, "metaphase", 0.99, 100.0, track=4, edge_um=300.0)
    assert matching_cells(t, [near_edge, small, big, fine]) == [fine]
    assert matching_cells(trig(edge_margin_um=0), [near_edge]) == [near_edge]


def probs(meta: float) -> dict[str, float]:
    return {"metaphase": meta, "anaphase": 1.0 - meta}


def cell(track: int, meta: float, **kw) -> Cell:
    """A nucleus with class probabilities: called metaphase when p(metaphase) > 0.5."""
    phase = "metaphase" if meta > 0.5 else "anaphase"
    return Cell(10.0 * track, 10.0, phase, max(meta, 1 - meta), probabilities=probs(meta),
                track=track, **kw)


def test_mean_evidence_averages_one_track_over_its_frames():
    """Track 1 dips below min_confidence once; each frame must match for `each`, the mean over
    three frames is enough for `mean`; another track's frames never add to it."""
    dip = [cell(1, 0.9), cell(1, 0.6), cell(1, 0.9)]  # mean 0.8
    each = TriggerTracker([trig(min_confidence=0.75, consecutive_frames=3)])
    assert all(each.update(0, float(t), [c]) is None for t, c in enumerate(dip))
    mean = TriggerTracker([trig(min_confidence=0.75, consecutive_frames=3, evidence="mean")])
    assert [mean.update(0, float(t), [c]) is not None for t, c in enumerate(dip)] == [
        False, False, True]
    assert mean.evidence == pytest.approx((0.8,))  # what made it count, not the last 0.9
    assert mean.update(0, 3.0, [cell(2, 0.1)]) is None and mean.evidence is None
    assert each.evidence is None  # `each`: the cells' own confidences are the evidence
    # too low a mean, or not called the phase in the last frame: no
    low = TriggerTracker([trig(min_confidence=0.75, consecutive_frames=3, evidence="mean")])
    assert all(low.update(0, float(t), [cell(1, m)]) is None
               for t, m in enumerate((0.9, 0.4, 0.8)))
    last = TriggerTracker([trig(min_confidence=0.6, consecutive_frames=3, evidence="mean")])
    assert all(last.update(0, float(t), [cell(1, m)]) is None
               for t, m in enumerate((0.95, 0.95, 0.45)))
    # two cells alternating: no track is seen three frames in a row
    alt = TriggerTracker([trig(min_confidence=0.75, consecutive_frames=3, evidence="mean")])
    frames = [[cell(1, 0.9)], [cell(2, 0.9)], [cell(1, 0.9)], [cell(2, 0.9)]]
    assert all(alt.update(0, float(t), f) is None for t, f in enumerate(frames))


def test_mean_evidence_window_restarts_when_a_cell_is_missed_or_not_eligible():
    t = trig(min_confidence=0.75, consecutive_frames=2, evidence="mean", edge_margin_um=10)
    tr = TriggerTracker([t])
    assert tr.update(0, 0.0, [cell(1, 0.9, edge_um=50.0)]) is None
    assert tr.update(0, 1.0, [cell(1, 0.9, edge_um=2.0)]) is None  # at the border
    assert tr.update(0, 2.0, [cell(1, 0.9, edge_um=50.0)]) is None
    assert tr.update(0, 3.0, []) is None  # missed
    assert tr.update(0, 4.0, [cell(1, 0.9, edge_um=50.0)]) is None
    fired = tr.update(0, 5.0, [cell(1, 0.8, edge_um=50.0), cell(2, 0.99, edge_um=50.0)])
    assert fired is not None and [c.track for c in fired[1]] == [1]
    tr.mark_followed("t", [1])
    assert tr.update(0, 6.0, [cell(1, 0.9, edge_um=50.0)]) is None  # followed already


def test_mean_evidence_counts_a_nan_probability_as_zero_not_as_a_void_window():
    """A frame whose probabilities are not numbers lowers the mean like an uncertain frame; it
    must not keep the window's mean NaN (never reaching min_confidence) for three frames."""
    t = trig(min_confidence=0.6, consecutive_frames=3, evidence="mean")
    tr = TriggerTracker([t])
    nan = Cell(10.0, 10.0, "metaphase", float("nan"), track=1,
               probabilities={"metaphase": float("nan"), "anaphase": float("nan")})
    frames = [cell(1, 0.95), nan, cell(1, 0.95)]  # mean (0.95 + 0 + 0.95) / 3 = 0.63
    assert [tr.update(0, float(i), [c]) is not None for i, c in enumerate(frames)] == [
        False, False, True]
