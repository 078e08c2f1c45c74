"""pycromanager acquisition events for the planner's ``FrameRequest``s.

The planner (``smartscope.decide``) knows nothing of pycromanager; this module turns each request
into the event dict pycromanager's engines take. The channel goes through ``config_group``; the
objective, which needs a second config group, is sent as the device properties of its preset,
read from the microscope's configuration once per preset and kept for the run (the core is not
asked again for every event: on the Java bridge each read is a round trip). Stage targets have
been checked against the limits by the planner before they get here.
"""

from __future__ import annotations

from typing import Any, TypedDict

from smartscope.acquire.corecalls import PresetProperties
from smartscope.decide import FrameRequest


class AcquisitionEvent(TypedDict, total=False):
    """The pycromanager event of one image (the keys smartscope sends; times in s, um, ms)."""

    axes: dict[str, Any]
    config_group: list[str]
    exposure: float
    x: float
    y: float
    z: float
    properties: list[list[str]]
    min_start_time: float


class EventBuilder:
    """Builds the event of each request; the objective presets' properties are cached.

    Parameters
    ----------
    objective_group : str
        Config group of the objective turret.
    preset_properties : PresetProperties
        Reads a preset's (device, property, value) settings from the microscope.
    """

    def __init__(self, objective_group: str, preset_properties: PresetProperties) -> None:
        self.objective_group = objective_group
        self._read = preset_properties
        self._properties: dict[str, list[list[str]]] = {}

    def properties(self, objective: str) -> list[list[str]]:
        """The device settings of an objective preset (read once, then from the cache)."""
        props = self._properties.get(objective)
        if props is None:
            props = [[str(d), str(p), str(v)]
                     for d, p, v in self._read(self.objective_group, objective)]
            self._properties[objective] = props
        return props

    def event(self, request: FrameRequest) -> AcquisitionEvent:
        """The pycromanager event for one request."""
        event: AcquisitionEvent = {
            "axes": request.axes(),
            "config_group": [request.channel_group, request.channel],
            "exposure": float(request.exposure_ms),
            "x": float(request.x_um),
            "y": float(request.y_um),
        }
        props = self.properties(request.objective)
        if props:
            event["properties"] = [list(p) for p in props]
        if request.z_um is not None:
            event["z"] = float(request.z_um)
        if request.min_start_time_s is not None:
            event["min_start_time"] = max(0.0, float(request.min_start_time_s))
        return event


def to_event(
    request: FrameRequest, *, objective_group: str, preset_properties: PresetProperties
) -> AcquisitionEvent:
    """The pycromanager event for one request, reading the objective preset from the microscope
    (use an ``EventBuilder`` for many events: it reads each preset once)."""
    return EventBuilder(objective_group, preset_properties).event(request)
