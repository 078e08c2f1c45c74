"""Event-capture scoring: precision, recall, light and time on wrong cells, from decision
records against a labelled truth (``LabelTruth``)."""

from __future__ import annotations

import math

import pytest

from smartscope.decide.capture import ScreenedField, score_run, summarise, target_phases
from smartscope.decide.labels import LabelTruth

FIELD = ScreenedField("p0", 0.0, 0.0, 200.0, 200.0)


def labels():
    """Cell A (0, 0) in metaphase from t=10 to t=30; cell B (50, 0) interphase; cell C (500, 0)
    outside the field in metaphase; cell D (-60, 40) in metaphase from t=40, never caught."""
    rows = []
    for t in range(0, 60, 10):
        rows.append((t, 0.0, 0.0, "metaphase" if 10 <= t <= 30 else "prometaphase"))
        rows.append((t, 50.0, 0.0, "interphase"))
        rows.append((t, 500.0, 0.0, "metaphase"))
        rows.append((t, -60.0, 40.0, "metaphase" if t >= 40 else "interphase"))
    return LabelTruth(rows)


def trigger(fid, t, x, y, end="return", **end_kw):
    return [
        {"event": "trigger", "followup": fid, "trigger": "zoom", "time_s": t,
         "cell": {"x_um": x, "y_um": y, "track": fid}},
        {"event": end, "followup": fid, "trigger": "zoom", "time_s": t + 5,
         "followup_frames": end_kw.get("frames", 10), "light_ms": end_kw.get("light", 100.0),
         "duration_s": 5.0},
    ]


def test_labels_link_into_episodes_inside_the_field():
    eps = labels().episodes({"metaphase"}, [FIELD], 0.0, 50.0)
    assert [(e.start_s, e.end_s) for e in eps] == [(10.0, 40.0), (40.0, 50.0)]
    assert eps[0].cell != eps[1].cell and eps[0].position == "p0"


def test_precision_recall_and_wrong_light():
    truth = labels()
    decisions = (trigger(1, 20.0, 1.0, 1.0)            # right: A in metaphase
                 + trigger(2, 21.0, 49.0, 0.0)         # wrong: B is interphase
                 + trigger(3, 22.0, 120.0, 120.0))     # wrong: no cell there
    s = score_run(decisions, {"zoom": ("metaphase",)}, truth, [FIELD], 0.0, 50.0)["zoom"]
    assert (s.triggers, s.right, s.episodes, s.caught) == (3, 1, 2, 1)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(0.5)
    assert s.wrong_light_ms == 200.0 and s.wrong_time_s == 10.0 and s.light_ms == 300.0
    assert [r.truth_phase for r in s.records] == ["metaphase", "interphase", None]


def test_trigger_after_the_episode_catches_nothing():
    s = score_run(trigger(1, 45.0, 0.0, 0.0), {"zoom": ("metaphase",)}, labels(), [FIELD],
                  0.0, 50.0)["zoom"]
    assert s.right == 0 and s.caught == 0 and s.recall == 0.0


def test_rejected_followups_count_for_precision_not_recall():
    decisions = trigger(1, 20.0, 0.0, 0.0, end="not_confirmed", frames=1, light=10.0)
    decisions += trigger(2, 21.0, 50.0, 0.0, end="not_confirmed", frames=1, light=10.0)
    scores = score_run(decisions, {"zoom": ("metaphase",)}, labels(), [FIELD], 0.0, 50.0)
    s = scores["zoom"]
    assert (s.triggers, s.rejected, s.rejected_right, s.followups) == (2, 2, 1, 0)
    assert s.caught == 0 and math.isnan(s.followup_precision)
    summary = summarise(scores)["zoom"]
    assert summary["followup_precision"] is None and summary["wrong_light_ms"] == 10.0


def test_telophase_counts_as_anaphase_for_a_five_class_model():
    assert "telophase" in target_phases(["anaphase"], ["interphase", "anaphase"])
    assert "telophase" not in target_phases(["anaphase"], ["anaphase", "telophase"])


def test_a_field_followup_catches_every_matched_cell_a_zoom_only_its_own():
    """At t=45 cell A (0, 0) is out of metaphase and D (-60, 40) in it; the trigger fired on A
    with D matched too: a burst of the whole field images D as well, a zoom on A does not."""
    def decisions(actions):
        d = trigger(1, 45.0, 0.0, 0.0)
        d[0]["cells"] = [{"x_um": 0.0, "y_um": 0.0}, {"x_um": -60.0, "y_um": 40.0}]
        d[0]["actions"] = actions
        return d

    field = decisions([{"type": "burst", "n_frames": 5}, {"type": "return_to_screening"}])
    zoom = decisions([{"type": "centre_on_cell", "objective": "60x"},
                      {"type": "return_to_screening"}])
    truth = labels()
    s = score_run(field, {"zoom": ("metaphase",)}, truth, [FIELD], 0.0, 50.0)["zoom"]
    assert (s.triggers, s.right, s.caught) == (1, 0, 1)  # wrong on A, yet D's episode caught
    s = score_run(zoom, {"zoom": ("metaphase",)}, truth, [FIELD], 0.0, 50.0)["zoom"]
    assert (s.triggers, s.right, s.caught) == (1, 0, 0)
