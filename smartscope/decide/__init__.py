"""Pure decision logic: trigger rules with persistence -> follow-up programs -> frame requests
(``smartscope.acquire.events`` turns them into pycromanager events); pixel -> stage conversion and
the stage-limit check. No microscope here."""

from smartscope.classify.cells import Cell
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
    place_cells,
    stage_to_pixel,
)
from smartscope.decide.labels import LabelTruth
from smartscope.decide.plan import Frame, Planner, PlanSettings, Step
from smartscope.decide.records import CentreTarget, Decision, DecisionEvent
from smartscope.decide.requests import FOLLOW, SCREEN, FrameRequest, Mode, axes_key
from smartscope.decide.tracking import Link, NucleusTracker
from smartscope.decide.triggers import TriggerTracker, condition_holds, matching_cells

__all__ = [
    "FOLLOW", "NO_LIMITS", "SCREEN", "UPRIGHT", "Affine", "Cell", "CentreTarget", "Decision",
    "DecisionEvent", "Episode", "Frame", "FrameRequest", "LabelTruth", "Limits", "Link", "Mode",
    "NucleusTracker", "PlanSettings", "Planner", "ScreenedField", "Step", "TriggerScore",
    "TriggerTracker", "TrueCell", "TruthProvider", "axes_key", "check_target", "condition_holds",
    "format_scores", "image_centre_px", "matching_cells", "pixel_to_stage", "place_cells",
    "score_run", "stage_to_pixel", "summarise",
]
