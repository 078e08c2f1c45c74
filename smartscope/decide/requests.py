"""What the planner asks the microscope for (``FrameRequest``); ``smartscope.acquire.events``
turns it into a pycromanager event.

Every request carries the full microscope state (objective, channel, exposure, x, y, z), so
returning to screening restores everything by construction. Axes tag each image so screening and
follow-up frames differ in the saved data set: ``mode`` ("screen" / "follow"), ``time`` (screening
time point, or follow-up time point counted over the whole run), ``position`` (index of the
screening position), ``z`` (slice index in a z-stack, else 0) and ``channel`` (preset name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: The two kinds of frame: screening and follow-up (the ``mode`` axis of every image).
Mode = Literal["screen", "follow"]
SCREEN: Mode = "screen"
FOLLOW: Mode = "follow"

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
