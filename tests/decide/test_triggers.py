"""Trigger rules: confidence, cell count, persistence, cooldown, first match wins."""

from __future__ import annotations

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
