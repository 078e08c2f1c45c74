"""Pure decision logic: trigger rules with persistence -> follow-up programs -> frame requests ->
pycromanager events; pixel -> stage conversion and the stage-limit check. No microscope here."""

from smartscope.decide.capture import (
    Episode,
    ScreenedField,
    TriggerScore,
    TrueCell,
    TruthProvider,
    format_scores,
    score_run,
    summarise,
)
from smartscope.decide.geometry import (
    NO_LIMITS,
    UPRIGHT,
    Affine,
    Limits,
    check_target,
    image_centre_px,
    pixel_to_stage,
    stage_to_pixel,
)
from smartscope.decide.labels import LabelTruth
from smartscope.decide.plan import Frame, Planner, PlanSettings, Step
from smartscope.decide.requests import FOLLOW, SCREEN, FrameRequest, axes_key, to_event
from smartscope.decide.tracking import Link, NucleusTracker
from smartscope.decide.triggers import Cell, TriggerTracker, condition_holds, matching_cells

__all__ = [
    "Affine", "Cell", "Episode", "FOLLOW", "Frame", "FrameRequest", "LabelTruth", "Limits", "Link",
    "NO_LIMITS", "NucleusTracker", "PlanSettings", "Planner", "SCREEN", "ScreenedField", "Step",
    "TriggerScore", "TriggerTracker", "TrueCell", "TruthProvider", "UPRIGHT", "axes_key",
    "check_target", "condition_holds", "format_scores", "image_centre_px", "matching_cells",
    "pixel_to_stage", "score_run", "stage_to_pixel", "summarise", "to_event",
]
