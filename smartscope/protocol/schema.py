"""The protocol schema: ``Protocol`` and its screening, model, trigger and output parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from smartscope.protocol._base import Frozen, resolve_path
from smartscope.protocol.actions import Action, CentreOnCell, ReturnToScreening, Stop, ZStack
from smartscope.protocol.microscope import Microscope, SimulatedMicroscope

PROTOCOL_VERSION = 1


class Position(Frozen):
    """One stage position, um. ``z_um`` None keeps the focus found at the start of the run."""

    name: str | None = None
    x_um: float
    y_um: float
    z_um: float | None = None


class Grid(Frozen):
    """A rows x cols grid of positions centred on (centre_x_um, centre_y_um)."""

    centre_x_um: float = 0.0
    centre_y_um: float = 0.0
    rows: int = Field(ge=1, le=100)
    cols: int = Field(ge=1, le=100)
    spacing_um: float = Field(gt=0, description="distance between neighbouring positions, um")
    z_um: float | None = None

    def positions(self) -> tuple[Position, ...]:
        """Row-major positions, named r<row>c<col>."""
        out = []
        for r in range(self.rows):
            for c in range(self.cols):
                out.append(
                    Position(
                        name=f"r{r}c{c}",
                        x_um=self.centre_x_um + (c - (self.cols - 1) / 2) * self.spacing_um,
                        y_um=self.centre_y_um + (r - (self.rows - 1) / 2) * self.spacing_um,
                        z_um=self.z_um,
                    )
                )
        return tuple(out)


class Screening(Frozen):
    """The screening acquisition the triggers watch.

    Positions: a list, or a grid; with neither, the stage position at the start of the run.
    It ends after ``n_timepoints`` time points or ``duration_s`` seconds, whichever comes first.
    """

    positions: tuple[Position, ...] | None = Field(None, min_length=1)
    grid: Grid | None = None
    objective: str = Field(description="objective preset used for screening")
    channel: str = Field(description="channel preset used for screening")
    exposure_ms: float = Field(gt=0, le=60000, description="camera exposure, ms")
    interval_s: float = Field(ge=0, description="time between screening time points, s")
    n_timepoints: int | None = Field(None, ge=1)
    duration_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_layout_and_an_end(self) -> Screening:
        if self.positions is not None and self.grid is not None:
            raise ValueError("give either positions or grid, not both")
        if self.n_timepoints is None and self.duration_s is None:
            raise ValueError("give n_timepoints or duration_s so the screening ends")
        return self

    def position_list(self) -> tuple[Position, ...] | None:
        """The positions to visit (None: the current stage position)."""
        if self.grid is not None:
            return self.grid.positions()
        return self.positions


class ModelSpec(Frozen):
    """The classifier: a model bundle folder (``model.tflite`` + ``model_card.json``)."""

    bundle: Path = Field(description="bundle folder; relative paths are relative to the protocol")
    num_threads: int | Literal["auto"] = Field(
        "auto", description="LiteRT interpreter threads, 1-64, or auto: the cores this process "
        "may use, at most 4"
    )

    @field_validator("bundle", mode="after")
    @classmethod
    def _relative_to_file(cls, v: Path, info: ValidationInfo) -> Path:
        return resolve_path(v, info)

    @field_validator("num_threads", mode="before")
    @classmethod
    def _threads(cls, v: Any) -> int | str:
        if v == "auto":
            return v
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64:
            raise ValueError(f"got {v!r}: give a whole number of threads from 1 to 64, or auto")
        return v


class Detection(Frozen):
    """Nucleus detection settings."""

    diameter_um: float = Field(
        18.0, gt=0, le=200,
        description="expected nucleus diameter, um (18: HeLa interphase, the detection's default)",
    )
    pixel_size_um: float | None = Field(
        None, gt=0, description="pixel size of the SCREENING objective's images, um/px, "
        "overriding the microscope's calibration for it; other objectives use "
        "microscope.objectives.<name>.pixel_size_um or the calibration",
    )


class Tracking(Frozen):
    """How nuclei are linked from one screening frame to the next at a position (tracks)."""

    max_displacement_um: float = Field(
        10.0, gt=0, le=1000,
        description="largest move of a nucleus between two screening frames that keeps its "
        "track, um (HeLa at a few minutes' interval: a few um; keep it below half the distance "
        "between neighbouring nuclei)",
    )
    max_missed_frames: int = Field(
        1, ge=0, le=10, description="screening frames in a row a track may go undetected"
    )


class Trigger(Frozen):
    """When ``phase`` is seen with enough confidence in enough cells for enough frames, act.

    Which nuclei count: phase in ``phase``, confidence >= ``min_confidence``, centre at least
    ``edge_margin_um`` inside the image, area within ``min_area_um2`` / ``max_area_um2``.
    """

    name: str = Field(min_length=1)
    phase: tuple[str, ...] = Field(
        min_length=1, description="one phase or a list; must be classes of the model"
    )
    min_confidence: float = Field(0.8, ge=0, le=1)
    min_cells: int = Field(1, ge=1)
    consecutive_frames: int = Field(
        1, ge=1, description="screening frames in a row in which the same cell (track) matched; "
        "with persistence: field, in which any min_cells cells matched at the position"
    )
    persistence: Literal["cell", "field"] = Field(
        "cell", description="cell: consecutive_frames counts per tracked cell; field: per "
        "position, whichever cells match (the count of a crowd, not of one cell)"
    )
    evidence: Literal["each", "mean"] = Field(
        "each", description="each: the cell matched min_confidence in each of the "
        "consecutive_frames; mean: the mean of its probability of the phase over those frames "
        "reaches min_confidence and it is called the phase in the last (one uncertain frame "
        "does not start the count again); mean needs persistence: cell"
    )
    once_per_cell: bool = Field(
        True, description="a cell (track) already followed by this trigger is not followed again"
    )
    max_followups: int | None = Field(
        None, ge=1, description="at most this many follow-ups of this trigger per run"
    )
    edge_margin_um: float = Field(
        10.0, ge=0, description="a nucleus whose centre is closer than this to the image border "
        "never triggers (it may be cut off), um"
    )
    min_area_um2: float | None = Field(None, ge=0, description="smallest nucleus area, um^2")
    max_area_um2: float | None = Field(None, gt=0, description="largest nucleus area, um^2")
    cooldown_s: float = Field(0.0, ge=0, description="quiet time after firing, s")
    actions: tuple[Action, ...] = Field(min_length=1)

    @field_validator("phase", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _area_order(self) -> Trigger:
        lo, hi = self.min_area_um2, self.max_area_um2
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(
                f"min_area_um2 ({lo}) is larger than max_area_um2 ({hi}); make min <= max"
            )
        return self

    @model_validator(mode="after")
    def _mean_needs_tracks(self) -> Trigger:
        if self.evidence == "mean" and self.persistence == "field":
            raise ValueError(
                "evidence: mean averages one cell's probability over its track and needs "
                "persistence: cell; remove evidence or set persistence: cell"
            )
        return self

    @model_validator(mode="after")
    def _terminal_last(self) -> Trigger:
        for i, a in enumerate(self.actions[:-1]):
            if isinstance(a, Stop | ReturnToScreening):
                raise ValueError(
                    f"actions[{i}] is '{a.type}' but is not the last action; move it to the end"
                )
        return self

    def program(self) -> tuple[Action, ...]:
        """The actions, ending with return_to_screening unless they end with stop."""
        if isinstance(self.actions[-1], Stop | ReturnToScreening):
            return self.actions
        return (*self.actions, ReturnToScreening())


OUTPUT_NAME_KEYS = ("protocol", "date", "time", "seed")
"""What ``output.name`` may use."""


class Output(Frozen):
    """Where a run writes: ``<directory>/<name>``. The name template may use {protocol}, {date},
    {time} and {seed}."""

    directory: Path = Field(Path("runs"), description="relative to the working directory")
    name: str = Field("{protocol}_{date}_{time}", min_length=1)

    @field_validator("name", mode="after")
    @classmethod
    def _known_template_keys(cls, v: str) -> str:
        keys = ", ".join("{" + k + "}" for k in OUTPUT_NAME_KEYS)
        try:
            v.format(**dict.fromkeys(OUTPUT_NAME_KEYS, "x"))
        except KeyError as e:
            raise ValueError(f"value {v!r}: unknown key {{{e.args[0]}}}; the name may use {keys}"
                             ) from e
        except (ValueError, IndexError) as e:
            raise ValueError(f"value {v!r}: not a valid name template ({e}); write braces only "
                             f"around {keys}, or double them ({{{{ }}}}) for a literal brace"
                             ) from e
        return v


class Protocol(Frozen):
    """A smart acquisition, as written in a protocol file."""

    version: Literal[1] = Field(description="protocol format version (1)")
    microscope: Microscope = SimulatedMicroscope()
    screening: Screening
    model: ModelSpec
    detection: Detection = Detection()
    tracking: Tracking = Field(default_factory=lambda: Tracking.model_validate({}))
    triggers: tuple[Trigger, ...] = Field(default=(), description="rules; first match wins")
    on_error: Literal["continue", "stop"] = Field(
        "continue", description="after a hook failure: keep screening, or stop cleanly"
    )
    latency_budget_ms: float = Field(
        500.0, gt=0,
        description="the hook's time per image (classification, decision, records), ms; an "
        "image over it is logged as a warning and counted (frames.csv, run.json); the hook's "
        "latency adds to the shortest follow-up interval",
    )
    output: Output = Output()

    @field_validator("triggers", mode="after")
    @classmethod
    def _unique_trigger_names(cls, v: tuple[Trigger, ...]) -> tuple[Trigger, ...]:
        seen: set[str] = set()
        for t in v:
            if t.name in seen:
                raise ValueError(f"trigger name '{t.name}' is used twice; give each a unique name")
            seen.add(t.name)
        return v

    @model_validator(mode="after")
    def _stall_timeout_covers_exposures(self) -> Protocol:
        where, longest_ms = "screening.exposure_ms", self.screening.exposure_ms
        for i, trigger in enumerate(self.triggers):
            for j, action in enumerate(trigger.actions):
                ms = getattr(action, "exposure_ms", None)
                if ms is not None and ms > longest_ms:
                    where, longest_ms = f"triggers[{i}].actions[{j}].exposure_ms", ms
        timeout = self.microscope.stall_timeout_s
        if longest_ms / 1000.0 >= timeout:
            raise ValueError(
                f"microscope.stall_timeout_s is {timeout:g} s but {where} is {longest_ms:g} ms: "
                "raise stall_timeout_s above the longest exposure, or a frame would end the run "
                "as a stalled camera"
            )
        return self

    @model_validator(mode="after")
    def _moves_within_limits(self) -> Protocol:
        """A screening position outside the stage limits, or an objective switch or z-stack
        that always lands further than ``microscope.max_focus_travel_um`` from the screening
        focus, would be refused at every run or trigger: refuse the protocol instead."""
        lim = self.microscope.stage_limits
        for k, p in enumerate(self.screening.position_list() or ()):
            for axis, value, r in (("x", p.x_um, lim.x_um), ("y", p.y_um, lim.y_um),
                                   ("z", p.z_um, lim.z_um)):
                if value is not None and r is not None and not r[0] <= value <= r[1]:
                    name = f" ('{p.name}')" if p.name else ""
                    raise ValueError(
                        f"screening position {k}{name} {axis}_um {value:g} is outside "
                        f"microscope.stage_limits.{axis}_um [{r[0]:g}, {r[1]:g}]; move the "
                        "position inside the limits or correct the limits")
        travel = self.microscope.max_focus_travel_um
        screen = self.objective_offset_um(self.screening.objective)
        for i, trigger in enumerate(self.triggers):
            shift = 0.0
            for j, a in enumerate(trigger.actions):
                where = f"triggers[{i}].actions[{j}]"
                if isinstance(a, CentreOnCell) and a.objective:
                    shift = self.objective_offset_um(a.objective) - screen
                    if abs(shift) > travel:
                        raise ValueError(
                            f"{where}.objective '{a.objective}': its parfocal offset moves the "
                            f"focus {shift:+g} um from the screening objective's, beyond "
                            f"microscope.max_focus_travel_um ({travel:g}), so every follow-up "
                            "would be refused; check microscope.objectives."
                            f"{a.objective}.parfocal_z_offset_um or raise max_focus_travel_um")
                elif isinstance(a, ZStack) and abs(shift) + a.range_um / 2 > travel:
                    raise ValueError(
                        f"{where}.range_um {a.range_um:g} reaches {abs(shift) + a.range_um / 2:g}"
                        f" um from the screening focus, beyond microscope.max_focus_travel_um "
                        f"({travel:g}), so every z-stack would be refused; use range_um <= "
                        f"{2 * (travel - abs(shift)):g} or raise max_focus_travel_um")
        return self

    @model_validator(mode="after")
    def _one_screening_pixel_size(self) -> Protocol:
        ps = self.detection.pixel_size_um
        spec = self.microscope.objectives.get(self.screening.objective)
        if ps is not None and spec is not None and spec.pixel_size_um is not None \
                and abs(spec.pixel_size_um - ps) > 1e-9:
            raise ValueError(
                f"detection.pixel_size_um ({ps:g}) and microscope.objectives."
                f"{self.screening.objective}.pixel_size_um ({spec.pixel_size_um:g}) disagree "
                "for the screening objective; keep one of them"
            )
        return self

    def pixel_sizes_um(self) -> dict[str, float]:
        """Pixel size per objective preset given in the protocol, um/px (objectives missing here
        use the microscope's calibration)."""
        out = {k: v.pixel_size_um for k, v in self.microscope.objectives.items()
               if v.pixel_size_um is not None}
        if self.detection.pixel_size_um is not None:
            out[self.screening.objective] = self.detection.pixel_size_um
        return out

    def objective_offset_um(self, objective: str) -> float:
        """Parfocal z offset of an objective preset (0 when the protocol does not list it)."""
        spec = self.microscope.objectives.get(objective)
        return spec.parfocal_z_offset_um if spec is not None else 0.0
