"""Trigger rules: confidence, cell count, persistence, cooldown, first match wins."""

from __future__ import annotations

from smartscope.decide import Cell, TriggerTracker, matching_cells
from smartscope.protocol import Trigger

STOP = [{"type": "stop"}]


def trig(**kw) -> Trigger:
    return Trigger.model_validate({"name": "t", "phase": "metaphase", "actions": STOP, **kw})


META = Cell(10, 10, "metaphase", 0.9)
WEAK = Cell(20, 20, "metaphase", 0.5)
INTER = Cell(30, 30, "interphase", 0.99)


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
    tr = TriggerTracker([trig(cooldown_s=10)])
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
