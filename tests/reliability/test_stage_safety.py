"""Stage and objective safety: no command ever leaves the safe limits.

- Safe limits are the protocol's per axis, else the stage's own.
- A property-based test drives random detections (positions, pixel sizes, image sizes, camera
  orientations, objectives with parfocal offsets, follow-up programs) through the planner and the
  event builder and checks every requested stage target.
- End to end on the simulator: a centring target outside tight limits is refused, logged as a
  decision, and never reaches the stage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartscope.acquire import Run, connect
from smartscope.acquire.events import to_event
from smartscope.decide import (
    Cell,
    Frame,
    FrameRequest,
    Limits,
    Planner,
    PlanSettings,
)
from smartscope.protocol import CameraOrientation, Position, Screening, Trigger, parse_protocol

from .conftest import base_protocol

OBJECTIVES = ("10x", "20x", "60x")


def _inside(value: float | None, lim: tuple[float, float] | None) -> bool:
    if value is None:
        return True
    if not math.isfinite(value):
        return False
    return lim is None or lim[0] <= value <= lim[1]


def _check_request(req: FrameRequest, limits: Limits) -> None:
    assert _inside(req.x_um, limits.x_um), f"x {req.x_um} outside {limits.x_um}"
    assert _inside(req.y_um, limits.y_um), f"y {req.y_um} outside {limits.y_um}"
    assert _inside(req.z_um, limits.z_um), f"z {req.z_um} outside {limits.z_um}"
    event = to_event(req, objective_group="Objective",
                     preset_properties=lambda g, p: [("Turret", "Label", p)])
    assert _inside(event["x"], limits.x_um) and _inside(event["y"], limits.y_um)
    assert _inside(event.get("z"), limits.z_um)


# --- strategies -------------------------------------------------------------------------------


@st.composite
def _range(draw, lo_min: float, lo_max: float, w_min: float, w_max: float):
    lo = draw(st.floats(lo_min, lo_max))
    return (lo, lo + draw(st.floats(w_min, w_max)))


_action = st.one_of(
    st.builds(lambda o: {"type": "centre_on_cell", "objective": o,
                         "cell": "most_confident"}, st.sampled_from((*OBJECTIVES, None))),
    st.builds(lambda c: {"type": "centre_on_cell", "cell": c},
              st.sampled_from(("largest", "nearest_centre"))),
    st.builds(lambda n, m: {"type": "change_interval", "interval_s": 0.5, "min_frames": n,
                            "max_frames": n + m}, st.integers(1, 2), st.integers(0, 2)),
    # range capped at 500 steps and 200 um: a valid protocol has at most 501 slices and a range
    # of at most 200 um (ZStack checks both)
    st.builds(lambda r, s: {"type": "z_stack", "range_um": min(r, 500 * s, 200), "step_um": s},
              st.floats(0.5, 400), st.floats(0.5, 50)),
    st.builds(lambda n: {"type": "burst", "n_frames": n}, st.integers(1, 3)),
    st.just({"type": "set_channel", "preset": "DAPI", "exposure_ms": 30}),
)


@st.composite
def scenarios(draw):
    limits = Limits(
        x_um=draw(_range(-20000, 1000, 5, 20000)),
        y_um=draw(_range(-20000, 1000, 5, 20000)),
        z_um=draw(_range(-500, 100, 1, 1000)),
    )
    positions = tuple(
        Position(name=f"p{i}",
                 x_um=draw(st.floats(*limits.x_um)), y_um=draw(st.floats(*limits.y_um)),
                 z_um=draw(st.floats(*limits.z_um)))
        for i in range(draw(st.integers(1, 3)))
    )
    actions = draw(st.lists(_action, min_size=1, max_size=5))
    actions.append(draw(st.sampled_from(({"type": "return_to_screening"}, {"type": "stop"}))))
    trigger = Trigger.model_validate({"name": "t", "phase": "metaphase", "min_confidence": 0.5,
                                      "actions": actions})
    plan = PlanSettings(
        screening=Screening(objective=draw(st.sampled_from(OBJECTIVES)), channel="FITC",
                            exposure_ms=10, interval_s=1.0, n_timepoints=4),
        positions=positions,
        triggers=(trigger,),
        objective_offsets_um={o: draw(st.floats(-80, 80)) for o in OBJECTIVES},
        orientation=CameraOrientation(flip_x=draw(st.booleans()), flip_y=draw(st.booleans()),
                                      rotation_deg=draw(st.sampled_from((0, 90, 180, 270)))),
        limits=limits,
    )
    return plan


_cell = st.builds(
    lambda y, x, c, a: Cell(y, x, "metaphase", c, a),
    st.floats(-3000, 5000), st.floats(-3000, 5000), st.floats(0.5, 1.0), st.floats(10, 400),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=scenarios(), data=st.data())
def test_no_request_ever_leaves_the_limits(plan, data):
    planner = Planner(plan)
    queue = list(planner.start().requests)
    seen = 0
    refused = 0
    t = 0.0
    while queue and seen < 60:
        req = queue.pop(0)
        _check_request(req, plan.limits)
        seen += 1
        t += 1.0
        shape = data.draw(st.sampled_from(((256, 256), (512, 640), (2048, 2048))))
        cells = tuple(data.draw(st.lists(_cell, max_size=3))) if req.classify else None
        frame = Frame(request=req, index=seen - 1, time_s=t, shape=shape,
                      pixel_size_um=data.draw(st.floats(0.05, 6.5)), cells=cells)
        step = planner.on_frame(frame)
        for d in (dec.to_record() for dec in step.decisions):
            if d["event"] == "refused":
                refused += 1
                assert "outside the safe range" in d["reason"] or "not a finite" in d["reason"]
            if d["event"] == "trigger" and d.get("refused"):
                assert d["target"] is not None  # the refused target is logged, not sent
        queue.extend(step.requests)
        if step.done:
            break


def test_limits_default_to_the_stage_own_per_axis():
    proto = parse_protocol(base_protocol("b", positions=[{"x_um": 0, "y_um": 0, "z_um": 0}]) | {
        "microscope": {"type": "simulated", "stage_limits": {"x_um": [-100, 100]}}}, "p.yaml")
    stage = Limits(x_um=(-5000, 5000), y_um=(-4000, 4000), z_um=(-50, 300))
    got = PlanSettings.from_protocol(proto, proto.screening.positions, stage).limits
    # z: the stage's own, and within microscope.max_focus_travel_um (100) of the focus (0)
    assert got == Limits(x_um=(-100, 100), y_um=(-4000, 4000), z_um=(-50, 100))


class _EdgeCellClassifier:
    """A FAKE classifier: one confident metaphase nucleus near the image's right edge (20 px,
    13 um at 10x: inside the default edge margin of 10 um)."""

    classes = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")
    card = None

    def __call__(self, image, pixel_size_um):
        h, w = image.shape[-2:]
        probs = dict(zip(self.classes, (0, 0, 0.99, 0.01, 0), strict=True))
        return [Cell(y=h / 2, x=w - 20.0, phase="metaphase", confidence=0.99, area_um2=100.0,
                     probabilities=probs)]


def test_centring_outside_limits_is_refused_logged_and_never_sent(tmp_path: Path):
    """At 10x (0.645 um/px, 256 px) the edge cell is ~70 um right of centre: outside x +-40 um."""
    data = base_protocol("unused", n_timepoints=3,
                         positions=[{"name": "A", "x_um": 0, "y_um": 0}])
    data["microscope"]["stage_limits"] = {"x_um": [-40, 40], "y_um": [-40, 40]}
    proto = parse_protocol(data, "safety.yaml")
    fake = _EdgeCellClassifier()
    moves: list[tuple[float, float]] = []
    with connect(proto, simulate=True) as scope:
        summary = Run(proto, tmp_path / "run", scope=scope, classifier=fake, classify=fake,
                      observers=[lambda f: moves.append(scope.core.getXYPosition())],
                      stall_timeout_s=5).execute()
    assert summary.status == "completed" and summary.followup_frames == 0
    decisions = [json.loads(x) for x in (tmp_path / "run" / "decisions.jsonl").read_text()
                 .splitlines()]
    refused = [d for d in decisions if d["event"] == "refused"]
    triggers = [d for d in decisions if d["event"] == "trigger"]
    assert len(refused) == len(triggers) == 3
    assert all(t["target"]["x_um"] > 40 and t["refused"] for t in triggers)
    assert all("x target" in d["reason"] and "outside the safe range" in d["reason"]
               for d in refused)
    assert moves and all(-40 <= x <= 40 and -40 <= y <= 40 for x, y in np.asarray(moves))
