"""Events for the planner's requests: typed, each objective preset read once per run."""

from __future__ import annotations

from smartscope.acquire.events import EventBuilder
from smartscope.decide import SCREEN, FrameRequest


def _request(objective: str, z_um: float | None = 5.0, **kw) -> FrameRequest:
    base = dict(mode=SCREEN, time_index=0, position=0, position_name="A1", objective=objective,
                channel_group="Channel", channel="FITC", exposure_ms=20.0, x_um=1.0, y_um=2.0,
                z_um=z_um)
    return FrameRequest(**{**base, **kw})


def test_each_preset_is_read_once_and_events_do_not_share_state():
    reads = []

    def props(group, preset):
        reads.append((group, preset))
        return [("Turret", "Label", preset), ("Turret", "State", 3)]

    b = EventBuilder("Objective", props)
    events = [b.event(_request(o, time_index=t)) for t in range(50) for o in ("10x", "60x")]
    assert reads == [("Objective", "10x"), ("Objective", "60x")]  # not 100 round trips
    assert events[0]["properties"] == [["Turret", "Label", "10x"], ["Turret", "State", "3"]]
    events[0]["properties"][0][2] = "changed by pycromanager"
    assert b.event(_request("10x"))["properties"][0][2] == "10x"


def test_event_fields():
    b = EventBuilder("Objective", lambda g, p: [])
    ev = b.event(_request("10x", z_um=None, min_start_time_s=-0.5))
    assert ev == {"axes": {"time": 0, "position": 0, "channel": "FITC"},
                  "config_group": ["Channel", "FITC"], "exposure": 20.0, "x": 1.0, "y": 2.0,
                  "min_start_time": 0.0}
