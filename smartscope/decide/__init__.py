"""Pure decision logic: trigger rules with persistence -> follow-up programs -> frame requests ->
pycromanager events; pixel -> stage conversion and the stage-limit check. No microscope here."""

from smartscope.decide.geometry import (
    NO_LIMITS,
    UPRIGHT,
    Limits,
    check_target,
    image_centre_px,
    pixel_to_stage,
    stage_to_pixel,
)
from smartscope.decide.plan import Frame, Planner, PlanSettings, Step
from smartscope.decide.requests import FOLLOW, SCREEN, FrameRequest, axes_key, to_event
from smartscope.decide.triggers import Cell, TriggerTracker, condition_holds, matching_cells

__all__ = [
    "FOLLOW", "NO_LIMITS", "SCREEN", "UPRIGHT", "Cell", "Frame", "FrameRequest", "Limits",
    "PlanSettings", "Planner", "Step", "TriggerTracker", "axes_key", "check_target",
    "condition_holds", "image_centre_px", "matching_cells", "pixel_to_stage", "stage_to_pixel",
    "to_event",
]
