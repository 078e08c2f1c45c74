"""Following cells through the planner: tracks, once per cell, edge nuclei, confirmation at the
new objective, what a follow-up cost."""

from __future__ import annotations

from smartscope.decide import FOLLOW, SCREEN, Cell, Planner
from tests.decide.test_plan import SHAPE, Driver, settings

BURST = [{"type": "burst", "n_frames": 2}]
ZOOM_CONFIRM = [
    {"type": "centre_on_cell", "objective": "60x",
     "confirm": {"phase": "metaphase", "min_confidence": 0.6}},
    {"type": "change_interval", "interval_s": 0.5, "min_frames": 3, "max_frames": 3},
]
CENTRE = ((SHAPE[0] - 1) / 2, (SHAPE[1] - 1) / 2)


def meta(y=200.0, x=700.0, conf=0.95):
    return Cell(y, x, "metaphase", conf, 80.0)


def triggers(d):
    return [x for x in d.decisions if x["event"] == "trigger"]


def test_no_track_is_followed_twice_unless_asked():
    d = Driver(Planner(settings(BURST)), lambda r, i: [meta()] if r.mode == SCREEN else []).run()
    assert len(triggers(d)) == 1  # 5 time points, the same cell in metaphase in every one
    assert triggers(d)[0]["cell"]["track"] is not None
    again = Driver(Planner(settings(BURST, once_per_cell=False)),
                   lambda r, i: [meta()] if r.mode == SCREEN else []).run()
    assert len(triggers(again)) == 5


def test_a_new_cell_is_followed_after_the_first():
    def cells(req, i):
        if req.mode != SCREEN:
            return []
        return [meta()] + ([meta(600.0, 300.0)] if req.time_index >= 2 else [])

    d = Driver(Planner(settings(BURST)), cells).run()
    tracks = [t["cell"]["track"] for t in triggers(d)]
    assert len(tracks) == 2 and tracks[0] != tracks[1]


def test_edge_nuclei_never_trigger():
    """3 px from the border at 10x (2 um): cut off, never a trigger, however confident."""
    edge_cells = [Cell(3.0, 500.0, "metaphase", 0.99, 80.0),
                  Cell(500.0, SHAPE[1] - 4.0, "metaphase", 0.99, 80.0)]
    d = Driver(Planner(settings(BURST)), lambda r, i: edge_cells).run()
    assert triggers(d) == [] and all(r.mode == SCREEN for r, _ in d.log)
    d0 = Driver(Planner(settings(BURST, edge_margin_um=0)), lambda r, i: edge_cells).run()
    assert triggers(d0)


def test_consecutive_frames_need_the_same_cell():
    """Two cells far apart alternate in metaphase: each matches every other frame only."""
    def cells(req, i):
        a_meta = req.time_index % 2 == 0
        return [Cell(200.0, 300.0, "metaphase" if a_meta else "interphase", 0.95, 80.0),
                Cell(700.0, 700.0, "interphase" if a_meta else "metaphase", 0.95, 80.0)]

    d = Driver(Planner(settings(BURST, consecutive_frames=2)), cells).run()
    assert triggers(d) == []
    field = Driver(Planner(settings(BURST, consecutive_frames=2, persistence="field")),
                   cells).run()
    assert triggers(field)


def test_screening_cells_carry_tracks_and_stage_coordinates():
    p = Planner(settings(BURST))
    req = p.start().requests[0]
    from smartscope.decide import Frame

    step = p.on_frame(Frame(req, 0, 0.0, SHAPE, 0.645, (meta(), meta(600.0, 300.0))))
    assert step.cells is not None and [c.track for c in step.cells] == [1, 2]
    assert all(c.x_um is not None and c.edge_um > 100 for c in step.cells)


def test_confirm_rejects_a_wrong_call_and_returns_to_screening():
    """The screening call says metaphase; at 60x the centred nucleus is interphase."""
    def cells(req, i):
        if req.mode == SCREEN:
            return [meta()] if req.time_index == 1 else []
        return [Cell(CENTRE[0] + 10, CENTRE[1] - 5, "interphase", 0.97, 150.0)]

    d = Driver(Planner(settings(ZOOM_CONFIRM)), cells).run()
    follow = [r for r, _ in d.log if r.mode == FOLLOW]
    assert [r.action for r in follow] == ["confirm"]  # one frame at 60x, no time-lapse
    assert follow[0].objective == "60x" and follow[0].classify
    (rej,) = [x for x in d.decisions if x["event"] == "not_confirmed"]
    assert "interphase" in rej["reason"] and rej["seen"]["phase"] == "interphase"
    assert rej["followup_frames"] == 1 and rej["light_ms"] == 20.0
    nxt = d.log[[r for r, _ in d.log].index(follow[0]) + 1][0]
    assert nxt.mode == SCREEN and nxt.objective == "10x"
    assert not [x for x in d.decisions if x["event"] == "return"]


def test_confirm_rejects_when_nothing_is_at_the_centre():
    def cells(req, i):
        if req.mode == SCREEN:
            return [meta()] if req.time_index == 1 else []
        return [Cell(CENTRE[0] + 200, CENTRE[1], "metaphase", 0.97, 150.0)]  # 21.5 um away

    d = Driver(Planner(settings(ZOOM_CONFIRM)), cells).run()
    (rej,) = [x for x in d.decisions if x["event"] == "not_confirmed"]
    assert "within 10 um" in rej["reason"]


def test_confirmed_followup_goes_on_and_records_its_cost():
    def cells(req, i):
        if req.mode == SCREEN:
            return [meta()] if req.time_index == 1 else []
        return [Cell(CENTRE[0] + 3, CENTRE[1] + 2, "metaphase", 0.9, 150.0)]

    d = Driver(Planner(settings(ZOOM_CONFIRM)), cells).run()
    follow = [r for r, _ in d.log if r.mode == FOLLOW]
    assert [r.action for r in follow] == ["confirm"] + ["change_interval"] * 3
    events = [x["event"] for x in d.decisions]
    assert events[:4] == ["trigger", "confirmed", "interval_end", "return"]
    ret = d.decisions[3]
    assert ret["followup_frames"] == 4 and ret["light_ms"] == 80.0 and ret["duration_s"] > 1.0
