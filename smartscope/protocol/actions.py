"""Actions a trigger runs, in order: a discriminated union on ``type``.

A trigger's actions form a small follow-up program executed at the triggering position:

- ``centre_on_cell``: switch objective (parfocal z offset applied) and move the stage so the
  matched cell sits at the image centre. A target outside the safe stage limits is refused (logged
  as a decision, never sent) and the follow-up is abandoned. With ``confirm``, one frame is taken
  there and classified; unless the nucleus nearest the centre is in the confirm phase with enough
  confidence, the follow-up is abandoned (``not_confirmed`` in decisions.jsonl, with why).
- ``set_channel``: switch a config-group preset (channel or modality) and exposure for the frames
  that follow.
- ``change_interval``: a time-lapse at the new interval while the trigger's phase persists
  (EDA-style fast imaging), at least ``min_frames`` and at most ``max_frames`` frames.
- ``z_stack``: one stack centred on the current focus.
- ``burst``: ``n_frames`` frames back to back (or ``interval_s`` apart).
- ``stop``: end the run.
- ``return_to_screening``: restore objective, channel, exposure, interval and position and go on
  screening. Added implicitly when the list does not end with ``stop`` or ``return_to_screening``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from smartscope.protocol._base import Frozen


class Confirm(Frozen):
    """Classify the centred nucleus in the first frame after ``centre_on_cell`` (at the new
    objective's pixel size) and abandon the follow-up unless it is in ``phase``."""

    phase: tuple[str, ...] | None = Field(
        None, description="phase(s) the centred nucleus must be in; default the trigger's"
    )
    min_confidence: float = Field(0.5, ge=0, le=1)
    max_offset_um: float = Field(
        10.0, gt=0, description="the confirmed nucleus must lie this close to the image centre, um"
    )

    @field_validator("phase", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class CentreOnCell(Frozen):
    """Switch objective and centre the matched cell (pixel -> stage with the calibration)."""

    type: Literal["centre_on_cell"] = "centre_on_cell"
    objective: str | None = Field(
        None, description="objective preset to switch to; None keeps the current objective"
    )
    cell: Literal["most_confident", "largest", "nearest_centre"] = Field(
        "most_confident", description="which matched cell to centre when several match"
    )
    confirm: Confirm | None = Field(
        None, description="check the centred nucleus at the new objective before going on"
    )


class SetChannel(Frozen):
    """Set a config-group preset (channel / modality) and exposure for the following frames."""

    type: Literal["set_channel"] = "set_channel"
    preset: str = Field(description="preset name in the group, e.g. FITC or Brightfield")
    group: str | None = Field(None, description="config group; None = microscope.channel_group")
    exposure_ms: float | None = Field(None, gt=0, description="camera exposure, ms")


class ExtraChannel(Frozen):
    """A further channel imaged after the main frame at each follow-up time point."""

    preset: str
    group: str | None = Field(None, description="config group; None = microscope.channel_group")
    exposure_ms: float | None = Field(None, gt=0, description="camera exposure, ms")


class ChangeInterval(Frozen):
    """Time-lapse at ``interval_s`` while the trigger's phase persists, then the next action."""

    type: Literal["change_interval"] = "change_interval"
    interval_s: float = Field(ge=0, description="time between frames, s (0 = as fast as possible)")
    min_frames: int = Field(1, ge=1, description="frames taken whatever the phase")
    max_frames: int = Field(50, ge=1, description="upper bound on frames")
    while_phase_persists: bool = Field(
        True, description="stop early once the phase is absent for absent_frames frames"
    )
    absent_frames: int = Field(
        1, ge=1, description="consecutive frames without the phase that end it"
    )
    extra_channels: tuple[ExtraChannel, ...] = Field(
        (), description="channels imaged after the main (classified) frame at each time point"
    )

    @model_validator(mode="after")
    def _frames_order(self) -> ChangeInterval:
        if self.min_frames > self.max_frames:
            raise ValueError(
                f"min_frames ({self.min_frames}) is larger than max_frames ({self.max_frames}); "
                "make min_frames <= max_frames"
            )
        return self


MAX_Z_STACK_RANGE_UM = 200.0
"""Largest z-stack range accepted, um (a cell layer is tens of micrometres thick)."""


class ZStack(Frozen):
    """One z-stack centred on the current focus position."""

    type: Literal["z_stack"] = "z_stack"
    range_um: float = Field(
        gt=0, le=MAX_Z_STACK_RANGE_UM,
        description="total z range, um, centred on the current focus",
    )
    step_um: float = Field(gt=0, description="z step, um")

    @model_validator(mode="after")
    def _not_too_many(self) -> ZStack:
        n = int(round(self.range_um / self.step_um)) + 1
        if n > 501:
            raise ValueError(
                f"range_um/step_um gives {n} slices; use at most 501 (raise step_um)"
            )
        return self

    def offsets_um(self) -> list[float]:
        """Slice offsets from the centre focus, um, bottom to top."""
        n = int(round(self.range_um / self.step_um)) + 1
        start = -self.step_um * (n - 1) / 2
        return [start + i * self.step_um for i in range(n)]


class Burst(Frozen):
    """``n_frames`` frames back to back (``interval_s`` apart, 0 = as fast as possible)."""

    type: Literal["burst"] = "burst"
    n_frames: int = Field(ge=1, le=10000)
    interval_s: float = Field(0.0, ge=0, description="time between burst frames, s")


class Stop(Frozen):
    """End the run (images so far are kept)."""

    type: Literal["stop"] = "stop"


class ReturnToScreening(Frozen):
    """Restore objective, channel, exposure, interval and position, and go on screening."""

    type: Literal["return_to_screening"] = "return_to_screening"


Action = Annotated[
    CentreOnCell | SetChannel | ChangeInterval | ZStack | Burst | Stop | ReturnToScreening,
    Field(discriminator="type"),
]

ACTION_TYPES: tuple[str, ...] = (
    "centre_on_cell", "set_channel", "change_interval", "z_stack", "burst", "stop",
    "return_to_screening",
)
