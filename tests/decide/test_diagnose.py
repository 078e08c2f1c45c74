"""Where event capture loses an episode (``explain_losses``) and what wrong triggers were on."""

from __future__ import annotations

import pytest

from smartscope.classify.cells import Cell
from smartscope.decide.capture import (
    Episode,
    FollowUpRecord,
    ScreenedField,
    TriggerScore,
    TrueCell,
    score_run,
)
from smartscope.decide.diagnose import STAGES, ScreenView, explain_losses
from smartscope.decide.labels import LabelTruth
from smartscope.protocol.schema import Trigger

#: the true cell "A" sits at (0, 0) for the whole test; frames every 10 s
A = TrueCell("A", "metaphase", 0.0, 0.0)


def trig(**kw) -> Trigger:
    return Trigger.model_validate({"name": "zoom", "phase": "metaphase", "min_confidence": 0.8,
                                   "consecutive_frames": 2, "edge_margin_um": 10.0,
                                   "actions": [{"type": "return_to_screening"}], **kw})


def nucleus(conf=0.9, phase="metaphase", track=1, x=1.0, edge=100.0) -> Cell:
    return Cell(0.0, 0.0, phase, conf, 300.0, x_um=x, y_um=0.0, track=track, edge_um=edge)


def views(*cells_per_frame, t0=0.0) -> list[ScreenView]:
    return [ScreenView("p0", t0 + 10.0 * k, () if c is None else (c,))
            for k, c in enumerate(cells_per_frame)]


def find(cell, t):
    return A if cell == "A" else None


EP = Episode("A", 5.0, 45.0, "p0")  # frames at 10, 20, 30, 40 lie inside


def stage(v, followups=(), trigger=None, caught=(), ep=EP) -> str:
    out = explain_losses(trigger or trig(), [ep], caught, v, list(followups), find)
    assert sum(out.values()) == 1 and set(out) == set(STAGES)
    return next(k for k, n in out.items() if n)


def rec(t, outcome="return", cell="A", duration=0.0, trigger="zoom") -> FollowUpRecord:
    return FollowUpRecord(1, trigger, t, 0.0, 0.0, outcome != "not_confirmed", outcome,
                          duration_s=duration, truth_phase="metaphase", truth_cell=cell,
                          right=cell == "A")


def test_each_stage_of_the_chain():
    good = nucleus()
    six = (good,) * 6  # frames at 0..50 s: the run goes on after the episode
    assert stage(views(*six), caught={("A", 5.0)}) == "caught"
    # no frame inside the episode: busy in a follow-up, or simply between frames
    assert stage(views(good, t0=50.0), [rec(0.0, duration=60.0, cell="B")]) \
        == "not_screened_busy"
    assert stage(views(good, t0=50.0)) == "not_screened"
    # the run's last frame came before the cell could be seen consecutive_frames times
    assert stage(views(good, t0=40.0)) == "run_edge"
    assert stage(views(*[nucleus(x=30.0)] * 6)) == "not_detected"
    assert stage(views(*[nucleus(edge=3.0)] * 6)) == "edge_or_size"
    assert stage(views(*[nucleus(0.6)] * 6)) == "below_threshold"
    assert stage(views(*[nucleus(phase="anaphase")] * 6)) == "below_threshold"
    assert stage(views(nucleus(), nucleus(0.5), nucleus(), nucleus(0.5), nucleus(), good)) \
        == "not_consecutive"
    assert stage(views(*six)) == "blocked"
    # the call held; the trigger fired on another cell, but not in the last frame it held
    assert stage(views(*six[:4], nucleus(0.5), nucleus(0.5)), [rec(20.0, cell="B")]) \
        == "blocked"
    # ... in the last frame it held: the microscope went to the other cell
    assert stage(views(*six[:5], nucleus(0.5)), [rec(40.0, cell="B")]) == "busy_other_cell"
    assert stage(views(*six), [rec(20.0, "not_confirmed", duration=5.0)]) == "confirm_rejected"
    # rejected at 50 s, after the episode ended at 45 s: the confirmation saw the next phase
    assert stage(views(*six), [rec(40.0, "not_confirmed", duration=10.0)]) == "left_phase"
    assert stage(views(*six), [rec(20.0, "refused")]) == "refused"


def test_persistence_counts_on_one_track_and_before_the_episode():
    # two different tracks alternate on the cell: never two frames in a row on one track
    flip = views(*[nucleus(track=1 + k % 2) for k in range(6)])
    assert stage(flip) == "not_consecutive"
    # ... which a field-level persistence does count
    assert stage(flip, trigger=trig(persistence="field")) == "blocked"
    # a call that began in the frame before the episode started counts (as for the trigger)
    late = Episode("A", 15.0, 25.0, "p0")  # only the frame at 20 s lies inside
    assert stage(views(nucleus(), nucleus(), nucleus(), nucleus()), ep=late) == "blocked"
    assert stage(views(nucleus(), nucleus(0.1), nucleus(), nucleus()), ep=late) \
        == "not_consecutive"


def test_mean_evidence_is_diagnosed_as_the_trigger_counts_it():
    def called(p):
        return Cell(0.0, 0.0, "metaphase", p, 100.0, {"metaphase": p, "anaphase": 1 - p},
                    x_um=1.0, y_um=0.0, track=1, edge_um=100.0)

    mean = trig(evidence="mean")  # min_confidence 0.8, 2 frames
    dips = views(*[called(p) for p in (0.9, 0.6, 0.9, 0.6, 0.9, 0.6)])
    assert stage(dips) == "not_consecutive"  # never two frames >= 0.8 in a row
    assert stage(dips, trigger=trig(evidence="mean", min_confidence=0.75)) == "blocked"
    assert stage(dips, trigger=mean) == "not_consecutive"  # mean 0.75 < 0.8
    assert stage(views(*[called(0.7)] * 6), trigger=mean) == "below_threshold"


def test_only_this_triggers_followups_on_this_cell_count():
    six = views(*[nucleus()] * 6)
    other_cell = [rec(20.0, "not_confirmed", cell="B")]
    assert stage(six, other_cell) == "blocked"
    other_trigger = [rec(20.0, "not_confirmed", trigger="other")]
    assert stage(six, other_trigger) == "blocked"


def test_wrong_triggers_are_counted_by_their_true_phase():
    s = TriggerScore("zoom")
    for phase, right in (("prometaphase", False), ("metaphase", True), (None, False),
                         ("prometaphase", False)):
        s.records.append(FollowUpRecord(1, "zoom", 0.0, 0.0, 0.0, True, "return",
                                        truth_phase=phase, right=right))
    assert s.wrong_by_phase() == {"no cell": 1, "prometaphase": 2}
    summary = s.summary()
    assert summary["wrong_by_phase"] == {"no cell": 1, "prometaphase": 2}
    assert "losses" not in summary
    s.losses = {"caught": 1}
    assert s.summary()["losses"] == {"caught": 1}


@pytest.mark.parametrize("n", [1, 3])
def test_consecutive_frames_setting_is_used(n):
    # called in two frames in a row: enough for 1, not for 3
    v = views(nucleus(), nucleus(), *[nucleus(0.1)] * 4)
    assert stage(v, trigger=trig(consecutive_frames=n)) == (
        "blocked" if n == 1 else "not_consecutive")


def test_an_episode_cut_by_the_run_window_with_too_few_frames_is_run_edge():
    # under way at the start, over before the second frame
    assert stage(views(nucleus(), nucleus(0.1), nucleus(0.1)), ep=Episode("A", 0.0, 5.0, "p0")) \
        == "run_edge"
    # started just before the run's last frame
    assert stage(views(*[nucleus(0.1)] * 5, nucleus()), ep=Episode("A", 45.0, 50.0, "p0")) \
        == "run_edge"
    # a short episode inside the run is not the run's window: the trigger's persistence
    assert stage(views(nucleus(0.1), nucleus(), nucleus(0.1), nucleus(0.1)),
                 ep=Episode("A", 8.0, 12.0, "p0")) == "not_consecutive"


def test_a_followup_is_matched_to_its_frame_by_index_when_known():
    v = [ScreenView("p0", 10.0 * k, (nucleus(),), index=k) for k in range(6)]
    other = FollowUpRecord(1, "zoom", 40.00004, 0.0, 0.0, True, "return", truth_cell="B",
                           frame=4)
    v[5] = ScreenView("p0", 50.0, (nucleus(0.1),), index=5)
    assert stage(v, [other]) == "busy_other_cell"
    wrong_frame = FollowUpRecord(1, "zoom", 40.0, 0.0, 0.0, True, "return", truth_cell="B",
                                 frame=3)
    assert stage(v, [wrong_frame]) == "blocked"


def test_a_followup_confirmed_after_the_phase_ended_is_not_caught():
    truth = LabelTruth([(t, 0.0, 0.0, "metaphase" if t < 30 else "anaphase")
                        for t in range(0, 60, 10)])
    field = ScreenedField("p0", 0.0, 0.0, 100.0, 100.0)

    def run(confirmed_s):
        d = [{"event": "trigger", "followup": 1, "trigger": "zoom", "time_s": 20.0, "frame": 2,
              "cell": {"x_um": 0.0, "y_um": 0.0, "track": 1}},
             {"event": "confirmed", "followup": 1, "trigger": "zoom", "time_s": confirmed_s},
             {"event": "return", "followup": 1, "trigger": "zoom", "time_s": 45.0,
              "duration_s": 25.0}]
        return score_run(d, {"zoom": ("metaphase",)}, truth, [field], 0.0, 50.0)["zoom"]

    assert run(25.0).caught == 1
    late = run(35.0)  # metaphase ended at 30 s: the 60x imaging saw an anaphase
    assert late.caught == 0 and late.right == 1
    f = late.records[0]
    views_ = [ScreenView("p0", 10.0 * k, (nucleus(),), index=k) for k in range(5)]
    out = explain_losses(trig(), late.episode_list, late.caught_keys, views_, [f],
                         lambda c, t: TrueCell(c, "metaphase", 0.0, 0.0))
    assert out["left_phase"] == 1
