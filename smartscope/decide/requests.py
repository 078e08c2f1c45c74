"""What the planner asks the microscope for (``FrameRequest``) and its pycromanager event dict.

Every request carries the full microscope state (objective, channel, exposure, x, y, z), so
returning to screening restores everything by construction. Axes tag each image so screening and
follow-up frames differ in the saved data set: ``mode`` ("screen" / "follow"), ``time`` (screening
time point, or follow-up time point counted over the whole run), ``position`` (index of the
screening position), ``z`` (slice index in a z-stack, else 0) and ``channel`` (preset name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

#: The two kinds of frame: screening and follow-up (the ``mode`` axis of every image).
Mode = Literal["screen", "follow"]
SCREEN: Mode = "screen"
FOLLOW: Mode = "follow"

#: (config group, preset) -> [[device, property, value], ...]
PresetProperties = Callable[[str, str], Sequence[Sequence[str]]]


@dataclass(frozen=True)
class FrameRequest:
    """One image the planner wants, with the full microscope state for it."""

    mode: Mode
    time_index: int
    position: int
    position_name: str
    objective: str
    channel_group: str
    channel: str
    exposure_ms: float
    x_um: float
    y_um: float
    z_um: float | None
    z_index: int = 0
    min_start_time_s: float | None = None
    classify: bool = True
    trigger: str | None = None
    followup: int | None = None
    action: str | None = None

    def axes(self) -> dict[str, Any]:
        """The pycromanager / NDTiff axes of this image."""
        return {
            "mode": self.mode,
            "time": self.time_index,
            "position": self.position,
            "z": self.z_index,
            "channel": self.channel,
        }

    def key(self) -> tuple[Any, ...]:
        """Hashable identity, matched against an image's ``Axes`` metadata."""
        return axes_key(self.axes())


def axes_key(axes: dict[str, Any]) -> tuple[Any, ...]:
    """Hashable identity of an axes dict (as found in an image's metadata)."""
    return tuple(sorted((str(k), v) for k, v in axes.items()))


def to_event(
    request: FrameRequest,
    *,
    objective_group: str,
    preset_properties: PresetProperties,
) -> dict[str, Any]:
    """A pycromanager acquisition event for one request.

    The channel goes through ``config_group``; the objective, which needs a second config group,
    is sent as the device properties of its preset (``preset_properties`` reads them from the
    microscope's configuration). Stage targets must have been checked against the limits before.
    """
    event: dict[str, Any] = {
        "axes": request.axes(),
        "config_group": [request.channel_group, request.channel],
        "exposure": float(request.exposure_ms),
        "x": float(request.x_um),
        "y": float(request.y_um),
    }
    props = [[str(d), str(p), str(v)] for d, p, v in preset_properties(
        objective_group, request.objective)]
    if props:
        event["properties"] = props
    if request.z_um is not None:
        event["z"] = float(request.z_um)
    if request.min_start_time_s is not None:
        event["min_start_time"] = max(0.0, float(request.min_start_time_s))
    return event
