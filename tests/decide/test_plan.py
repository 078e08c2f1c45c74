"""The planner: screening order and timing, follow-up programs, limits, the end of a run."""

from __future__ import annotations

import pytest

from smartscope.acquire.events import to_event
from smartscope.decide import (
    FOLLOW,
    NO_LIMITS,
    SCREEN,
    Cell,
    Frame,
    Limits,
    Planner,
    PlanSettings,
    pixel_to_stage,
)
from smartscope.protocol import Position, Screening, Trigger

SHAPE = (1024, 1024)
PX = {"10x": 0.645, "20x": 0.3225, "60x": 0.1075}
META = Cell(200.0, 700.0, "metaphase", 0.95, 80.0)


def screening(**kw) -> Screening:
    base = dict(objective="10x", channel="FITC", exposure_ms=20, interval_s=2.0, n_timepoints=5)
    return Screening.model_validate({**base, **kw})


def settings(actions=None, n_pos=1, limits=NO_LIMITS, **trig_kw) -> PlanSettings:
    triggers = ()
    if actions is not None:
        triggers = (Trigger.model_validate(
            {"name": "zoom", "phase": "metaphase", "min_confidence": 0.8, "actions": actions,
             **trig_kw}),)
    return PlanSettings(
        screening=screening(),
        positions=tuple(Position(name=f"p{i}", x_um=1000.0 * i, y_um=500.0, z_um=10.0)
                        for i in range(n_pos)),
        triggers=triggers,
        objective_offsets_um={"10x": 0.0, "60x": 3.0},
        limits=limits,
    )


class Driver:
    """Feeds the planner frames as a microscope would, cells chosen by a callback."""

    def __init__(self, planner: Planner, cells_for=lambda req, i: ()):
        self.planner = planner
        self.cells_for = cells_for
        self.log: list[tuple] = []  # (request, time_s)
        self.decisions: list[dict] = []
        self.now = 0.0
        self.done = False
        self.pending = list(planner.start().requests)

    def run(self, max_frames=500):
        i = 0
        while self.pending and i < max_frames:
            req = self.pending.pop(0)
            if req.min_start_time_s is not None:
                self.now = max(self.now, req.min_start_time_s)
            self.log.append((req, self.now))
            cells = tuple(self.cells_for(req, i)) if req.classify else None
            frame = Frame(request=req, index=i, time_s=self.now, shape=SHAPE,
                          pixel_size_um=PX[req.objective], cells=cells)
            step = self.planner.on_frame(frame)
            self.decisions += [dec.to_record() for dec in step.decisions]
            self.pending += step.requests
            self.now += 0.05
            i += 1
            if step.done:
                self.done = True
                break
        return self


def test_screening_only_positions_and_timing():
    d = Driver(Planner(settings(n_pos=2))).run()
    reqs = [r for r, _ in d.log]
    assert d.done and len(reqs) == 10
    assert [(r.time_index, r.position) for r in reqs[:4]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r.mode == SCREEN and r.objective == "10x" for r in reqs)
    starts = [t for r, t in d.log if r.position == 0]
    assert starts == pytest.approx([0, 2, 4, 6, 8])
    assert d.decisions[-1]["event"] == "screening_done"


def test_duration_ends_screening():
    s = settings()
    s = PlanSettings(**{**s.__dict__, "screening": screening(n_timepoints=None, duration_s=5)})
    d = Driver(Planner(s)).run()
    assert [r.time_index for r, _ in d.log] == [0, 1, 2]


def test_zoom_program_centres_switches_and_returns():
    actions = [
        {"type": "centre_on_cell", "objective": "60x"},
        {"type": "set_channel", "preset": "Rhodamine", "exposure_ms": 50},
        {"type": "change_interval", "interval_s": 0.5, "min_frames": 2, "max_frames": 4},
        {"type": "z_stack", "range_um": 2, "step_um": 1},
    ]

    def cells(req, i):
        if req.mode == SCREEN and req.time_index in (1, 2):
            return [META]
        if req.mode == FOLLOW:
            return [Cell(511.5, 511.5, "metaphase", 0.9)]
        return []

    d = Driver(Planner(settings(actions, consecutive_frames=2)), cells).run()
    modes = [r.mode for r, _ in d.log]
    first_follow = modes.index(FOLLOW)
    assert d.log[first_follow - 1][0].time_index == 2  # fired on the 2nd consecutive frame
    trig = d.decisions[0]
    assert trig["event"] == "trigger" and trig["trigger"] == "zoom"
    assert trig["cells"][0]["phase"] == "metaphase"
    follow = [(r, t) for r, t in d.log if r.mode == FOLLOW]
    r0 = follow[0][0]
    x, y = pixel_to_stage(META.y, META.x, shape=SHAPE, pixel_size_um=0.645,
                          stage_x_um=0.0, stage_y_um=500.0)
    assert (r0.x_um, r0.y_um) == pytest.approx((x, y))
    assert r0.objective == "60x" and r0.z_um == pytest.approx(13.0)  # parfocal +3
    assert r0.channel == "Rhodamine" and r0.exposure_ms == 50
    assert trig["target"]["objective"] == "60x"
    timelapse = [(r, t) for r, t in follow if r.action == "change_interval"]
    assert len(timelapse) == 4  # phase persists -> max_frames
    gaps = [b[1] - a[1] for a, b in zip(timelapse, timelapse[1:], strict=False)]
    assert gaps == pytest.approx([0.5, 0.5, 0.5])
    stack = [r for r, _ in follow if r.action == "z_stack"]
    assert [r.z_um for r in stack] == pytest.approx([12, 13, 14])
    assert [r.z_index for r in stack] == [0, 1, 2]
    assert len({r.time_index for r in stack}) == 1
    after = d.log[modes.index(FOLLOW) + len(follow)][0]
    assert after.mode == SCREEN and after.objective == "10x" and after.channel == "FITC"
    assert (after.x_um, after.y_um, after.z_um) == (0.0, 500.0, 10.0)
    assert after.exposure_ms == 20
    events = [x["event"] for x in d.decisions]
    assert events[:3] == ["trigger", "interval_end", "return"]
    # all axes unique -> no image overwrites another in the data set
    keys = [r.key() for r, _ in d.log]
    assert len(keys) == len(set(keys))


def test_change_interval_ends_when_phase_absent():
    actions = [{"type": "change_interval", "interval_s": 0.2, "min_frames": 2,
                "max_frames": 10, "absent_frames": 1}]
    d = Driver(Planner(settings(actions)),
               lambda r, i: [META] if r.mode == SCREEN and r.time_index == 0 else []).run()
    follow = [r for r, _ in d.log if r.mode == FOLLOW]
    assert len(follow) == 2  # min_frames, then absent
    end = [x for x in d.decisions if x["event"] == "interval_end"][0]
    assert end["reason"] == "phase_absent"


def test_centre_outside_limits_is_refused_and_screening_goes_on():
    actions = [{"type": "centre_on_cell", "objective": "60x"}, {"type": "burst", "n_frames": 3}]
    d = Driver(Planner(settings(actions, limits=Limits(x_um=(-50, 50)))),
               lambda r, i: [META] if r.mode == SCREEN else []).run()
    assert all(r.mode == SCREEN for r, _ in d.log)
    refused = [x for x in d.decisions if x["event"] == "refused"]
    assert refused and "x target" in refused[0]["reason"]
    trig = [x for x in d.decisions if x["event"] == "trigger"][0]
    assert trig["refused"] is not None


def test_z_stack_outside_limits_refused():
    actions = [{"type": "z_stack", "range_um": 10, "step_um": 1}]
    d = Driver(Planner(settings(actions, limits=Limits(z_um=(0, 12)))),
               lambda r, i: [META] if r.mode == SCREEN else []).run()
    assert all(r.mode == SCREEN for r, _ in d.log)
    assert any(x["event"] == "refused" and x["action"] == "z_stack" for x in d.decisions)


def test_screening_position_outside_limits_is_a_protocol_error():
    from smartscope.errors import ProtocolError

    with pytest.raises(ProtocolError, match=r"screening.positions\[1\]"):
        Planner(settings(n_pos=2, limits=Limits(x_um=(-10, 10))))


def test_burst_and_stop():
    actions = [{"type": "burst", "n_frames": 4}, {"type": "stop"}]
    d = Driver(Planner(settings(actions)),
               lambda r, i: [META] if r.mode == SCREEN and r.time_index == 1 else []).run()
    assert d.done
    burst = [r for r, _ in d.log if r.mode == FOLLOW]
    assert len(burst) == 4 and all(r.action == "burst" for r in burst)
    assert d.decisions[-1]["event"] == "stop"
    assert d.log[-1][0].mode == FOLLOW


def test_burst_emitted_at_once_and_waited_for():
    actions = [{"type": "burst", "n_frames": 3}]
    p = Planner(settings(actions))
    first = p.start().requests[0]
    step = p.on_frame(Frame(first, 0, 0.0, SHAPE, 0.645, (META,)))
    assert len(step.requests) == 3
    assert p.on_frame(Frame(step.requests[0], 1, 0.1, SHAPE, 0.645)).requests == ()
    assert p.on_frame(Frame(step.requests[1], 2, 0.2, SHAPE, 0.645)).requests == ()
    nxt = p.on_frame(Frame(step.requests[2], 3, 0.3, SHAPE, 0.645)).requests
    assert len(nxt) == 1 and nxt[0].mode == SCREEN and nxt[0].time_index == 1


def test_extra_channels_each_time_point():
    actions = [{"type": "change_interval", "interval_s": 1, "min_frames": 2, "max_frames": 2,
                "extra_channels": [{"preset": "Brightfield", "exposure_ms": 5},
                                   {"preset": "Cy5"}]}]
    d = Driver(Planner(settings(actions)),
               lambda r, i: [META] if r.time_index == 0 and r.mode == SCREEN else []).run()
    follow = [r for r, _ in d.log if r.mode == FOLLOW]
    assert [r.channel for r in follow] == ["FITC", "Brightfield", "Cy5"] * 2
    assert [r.classify for r in follow] == [True, False, False] * 2
    assert follow[1].exposure_ms == 5 and follow[2].exposure_ms == 20


def test_cooldown_across_screening():
    actions = [{"type": "burst", "n_frames": 1}]
    d = Driver(Planner(settings(actions, cooldown_s=5.0, once_per_cell=False)),
               lambda r, i: [META]).run()
    fired = [x["time_s"] for x in d.decisions if x["event"] == "trigger"]
    assert len(fired) >= 2
    assert all(b - a >= 5.0 for a, b in zip(fired, fired[1:], strict=False))


def test_abandon_returns_to_screening():
    actions = [{"type": "change_interval", "interval_s": 0.1, "max_frames": 50}]
    p = Planner(settings(actions))
    first = p.start().requests[0]
    step = p.on_frame(Frame(first, 0, 0.0, SHAPE, 0.645, (META,)))
    assert step.requests[0].mode == FOLLOW
    step = p.abandon(0.5, "boom")
    assert step.decisions[0].event == "abandoned"
    assert step.requests[0].mode == SCREEN and not p.in_followup


def test_to_event():
    actions = [{"type": "centre_on_cell", "objective": "60x"}, {"type": "burst", "n_frames": 1}]
    p = Planner(settings(actions))
    first = p.start().requests[0]

    def props(group, preset):
        assert group == "Objective"
        return [("Objective", "Label", preset)]

    ev = to_event(first, objective_group="Objective", preset_properties=props)
    assert ev == {
        "axes": {"time": 0, "position": 0, "channel": "FITC"},
        "config_group": ["Channel", "FITC"], "exposure": 20.0, "x": 0.0, "y": 500.0,
        "z": 10.0, "properties": [["Objective", "Label", "10x"]],
    }
    step = p.on_frame(Frame(first, 0, 0.0, SHAPE, 0.645, (META,)))
    ev = to_event(step.requests[0], objective_group="Objective", preset_properties=props)
    assert ev["properties"] == [["Objective", "Label", "60x"]]
    assert ev["axes"]["followup"] == 1 and ev["z"] == pytest.approx(13.0)
    assert step.requests[0].step == 1  # asked for by the burst, the trigger's second action
    step = p.on_frame(Frame(step.requests[0], 1, 0.3, SHAPE, 0.1075))
    ev = to_event(step.requests[0], objective_group="Objective", preset_properties=lambda g, p: [])
    assert "properties" not in ev and ev["min_start_time"] == pytest.approx(2.0)


def test_a_mean_evidence_trigger_records_the_mean_that_made_it_fire():
    """The cell's confidence in the record is its last frame's; with `evidence: mean` the
    decision also says what made it count (the mean over its frames), and the progress line
    shows that rather than a confidence below min_confidence."""
    from smartscope.acquire.records import headline

    confs = {0: 0.95, 1: 0.71}  # mean 0.83 >= 0.8, the last frame 0.71 < 0.8
    d = Driver(Planner(settings([{"type": "stop"}], consecutive_frames=2, evidence="mean")),
               lambda r, i: [Cell(200.0, 700.0, "metaphase", confs[r.time_index], 80.0,
                                  track=7)] if r.time_index in confs else []).run()
    trig = next(rec for rec in d.decisions if rec["event"] == "trigger")
    assert trig["cells"][0]["confidence"] == pytest.approx(0.71)
    assert trig["evidence"] == {"rule": "mean", "frames": 2, "mean": pytest.approx(0.83),
                                "means": [pytest.approx(0.83)]}
    assert "(metaphase mean 0.83 over 2 frames)" in headline(trig)
    plain = Driver(Planner(settings([{"type": "stop"}], consecutive_frames=1)),
                   lambda r, i: [META] if r.time_index == 0 else []).run()
    assert "evidence" not in next(r for r in plain.decisions if r["event"] == "trigger")
