"""Property: whatever the detections, no request the planner emits leaves the stage limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smartscope.decide import Cell, Frame, Limits, Planner, PlanSettings, check_target
from smartscope.protocol import Position, Screening, Trigger

LIMITS = Limits(x_um=(-500.0, 500.0), y_um=(-400.0, 400.0), z_um=(-20.0, 20.0))

cells = st.lists(
    st.builds(Cell, y=st.floats(-5000, 5000), x=st.floats(-5000, 5000),
              phase=st.sampled_from(["metaphase", "interphase"]),
              confidence=st.floats(0, 1), area_um2=st.floats(0, 500)),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(cells, min_size=1, max_size=25),
    x0=st.floats(-500, 500), y0=st.floats(-400, 400), z0=st.floats(-20, 20),
    ps=st.floats(0.05, 2.0), range_um=st.floats(0.5, 60), offset=st.floats(-30, 30),
)
def test_no_request_outside_limits(frames, x0, y0, z0, ps, range_um, offset):
    trig = Trigger.model_validate({
        "name": "t", "phase": "metaphase", "min_confidence": 0.5,
        "actions": [{"type": "centre_on_cell", "objective": "60x", "cell": "nearest_centre"},
                    {"type": "z_stack", "range_um": range_um, "step_um": 0.5},
                    {"type": "change_interval", "interval_s": 0, "max_frames": 2}],
    })
    planner = Planner(PlanSettings(
        screening=Screening(objective="10x", channel="FITC", exposure_ms=5, interval_s=1,
                            n_timepoints=len(frames)),
        positions=(Position(x_um=x0, y_um=y0, z_um=z0),), triggers=(trig,),
        objective_offsets_um={"60x": offset}, limits=LIMITS))
    pending = list(planner.start().requests)
    i, t = 0, 0.0
    while pending and i < 500:
        req = pending.pop(0)
        assert check_target(LIMITS, req.x_um, req.y_um, req.z_um) is None, req
        found = tuple(frames[min(req.time_index, len(frames) - 1)]) if req.classify else None
        step = planner.on_frame(Frame(req, i, t, (1024, 1024), ps, found))
        pending += step.requests
        i, t = i + 1, t + 0.1
        if step.done:
            break
    assert not pending
