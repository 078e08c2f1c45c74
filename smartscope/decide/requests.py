"""What the planner asks the microscope for (``FrameRequest``); ``smartscope.acquire.events``
turns it into a pycromanager event.

Every request carries the full microscope state (objective, channel, exposure, x, y, z), so
returning to screening restores everything by construction. The axes of its event identify the
image when it comes back: a screening image has ``time`` (screening time point), ``position``
(index of the screening position) and ``channel`` (preset name), the axes of the screening data
set; a follow-up image has ``followup`` (the follow-up's number), ``time`` (follow-up time point
counted over the whole run), ``z`` (slice index in a z-stack, else 0) and ``channel``. Where a
follow-up image is stored, and under which axes, is decided in ``smartscope.acquire.datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: The two kinds of frame: screening and follow-up.
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
    step: int | None = None
    """A follow-up frame: the index (0-based) of the trigger action that asked for it."""

    def axes(self) -> dict[str, Any]:
        """The axes of this image's pycromanager event (unique over a run, see the module
        docstring)."""
        if self.mode == SCREEN:
            return {"time": self.time_index, "position": self.position, "channel": self.channel}
        return {"followup": self.followup if self.followup is not None else 0,
                "time": self.time_index, "z": self.z_index, "channel": self.channel}

    def key(self) -> tuple[Any, ...]:
        """Hashable identity, matched against an image's ``Axes`` metadata."""
        return axes_key(self.axes())


def axes_key(axes: dict[str, Any]) -> tuple[Any, ...]:
    """Hashable identity of an axes dict (as found in an image's metadata)."""
    return tuple(sorted((str(k), v) for k, v in axes.items()))
