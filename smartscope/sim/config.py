"""Configuration of the simulated microscope (frozen pydantic models, ``extra="forbid"``).

Units are in the field names. The defaults describe a wide-field microscope with a 10x/20x/60x
turret, a 1024 x 1024 camera and a slide of HeLa H2B-GFP cells, calibrated against the real HeLa
frames of the Cell Tracking Challenge (see ``docs/simulator.md``).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from smartscope import phases
from smartscope.frozen import FrozenModel
from smartscope.protocol.microscope import ObjectiveSpec


class SimObjective(ObjectiveSpec):
    """One objective on the simulated turret: the protocol's ``ObjectiveSpec`` (parfocal offset,
    pixel size, here required) and the optics the renderer needs.

    The sample is in focus at ``SimConfig.focus_z_um + parfocal_z_offset_um``.
    """

    pixel_size_um: float = Field(gt=0)
    """Size of one camera pixel in the sample plane, um/px."""
    magnification: float = Field(gt=0)
    """Nominal magnification (10 for a 10x objective)."""
    na: float = Field(gt=0, le=1.6)
    """Numerical aperture: sets the in-focus blur and how fast defocus blurs."""
    brightness: float = Field(default=1.0, gt=0)
    """Relative fluorescence signal per pixel (collection efficiency over pixel area)."""


def named_magnification(name: str) -> float | None:
    """The magnification a preset name says ('60x', 'Plan Apo 20X'), None if it says none."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*[xX]", name)
    return float(match.group(1)) if match and float(match.group(1)) > 0 else None


def magnification(name: str) -> float:
    """``named_magnification``, 10 where the name says none."""
    return named_magnification(name) or 10.0


def default_na(magnification: float) -> float:
    """A dry objective's usual numerical aperture for its magnification (capped at 1.4)."""
    return min(1.4, 0.03 * magnification + 0.1)


def guessed_objective(name: str, pixel_size_um: float) -> SimObjective:
    """An objective known only by its name: magnification from the name, the usual NA."""
    mag = magnification(name)
    return SimObjective(magnification=mag, pixel_size_um=pixel_size_um, na=default_na(mag))


class ChannelSpec(FrozenModel):
    """One preset of the ``Channel`` group (a filter cube / light path)."""

    chromatin_gain: float = Field(default=0.0, ge=0)
    """Signal of the H2B chromatin label, relative to FITC."""
    body_gain: float = Field(default=0.0, ge=0)
    """Signal of a whole-cell (cytoplasm) label, relative to an interphase nucleus in FITC."""
    background_gain: float = Field(default=1.0, ge=0)
    """Background (autofluorescence, stray light) relative to ``background_counts_per_ms``."""
    brightfield: bool = False
    """Transmitted light: a bright field with cells as faint absorbing texture."""


class DemoSpec(FrozenModel):
    """Makes a few cells near a stage position enter metaphase soon after the start.

    The ``n_cells`` cells nearest to (``x_um``, ``y_um``) start in prometaphase such that they
    reach metaphase at sim times spread evenly over ``metaphase_at_s``.
    """

    x_um: float = 0.0
    y_um: float = 0.0
    n_cells: int = Field(default=3, ge=1, le=20)
    metaphase_at_s: tuple[float, float] = (120.0, 900.0)
    """Earliest and latest sim time (s) at which a demo cell enters metaphase."""

    @field_validator("metaphase_at_s")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(
                f"metaphase_at_s={v}: give (earliest, latest) with 0 <= earliest <= latest"
            )
        return v


def _default_objectives() -> dict[str, SimObjective]:
    return {
        "10x": SimObjective(magnification=10, pixel_size_um=0.645, na=0.3,
                            parfocal_z_offset_um=0.0),
        "20x": SimObjective(magnification=20, pixel_size_um=0.3225, na=0.75,
                            parfocal_z_offset_um=0.3, brightness=1.5),
        "60x": SimObjective(magnification=60, pixel_size_um=0.1075, na=1.4,
                            parfocal_z_offset_um=0.5, brightness=2.0),
    }


def _default_channels() -> dict[str, ChannelSpec]:
    return {
        "DAPI": ChannelSpec(chromatin_gain=0.6, background_gain=2.0),
        "FITC": ChannelSpec(chromatin_gain=1.0, background_gain=1.0),
        "Rhodamine": ChannelSpec(chromatin_gain=0.02, body_gain=0.25, background_gain=0.8),
        "Cy5": ChannelSpec(chromatin_gain=0.0, body_gain=0.03, background_gain=0.3),
        "Brightfield": ChannelSpec(body_gain=0.04, background_gain=0.0, brightfield=True),
    }


def _default_mitosis_minutes() -> dict[str, float]:
    return {
        phases.PROPHASE: 12.0,
        phases.PROMETAPHASE: 12.0,
        phases.METAPHASE: 20.0,
        phases.ANAPHASE: 5.0,
        phases.TELOPHASE: 10.0,
    }


class SimConfig(FrozenModel):
    """Everything the simulated microscope needs; pass it to ``smartscope.sim.start``.

    Stage coordinates are micrometres; the slide is centred on (0, 0). Camera values are in ADU
    (camera counts) and electrons. Signal levels are for ``exposure_ms`` = 1 at 10x in FITC and
    scale linearly with exposure.
    """

    seed: int = 0
    """Seeds the sample, the cell cycle and the camera noise."""
    n_cells: int = Field(default=450, ge=0, le=5000)
    """Cells on the slide at sim time 0."""
    slide_size_um: tuple[float, float] = (1000.0, 1000.0)
    """Width and height (x, y) of the populated area, centred on stage (0, 0)."""
    time_scale: float = Field(default=1.0, gt=0)
    """Sim seconds per real second (60: one minute of cell cycle per real second)."""
    start_time_s: float = 0.0
    """Sim clock at start."""
    sensor_px: int = Field(default=1024, ge=64, le=4096)
    """Camera sensor side (square), pixels: 1024 or 2048 for a realistic camera."""
    camera_offset_adu: float = Field(default=100.0, ge=0, le=60000)
    read_noise_e: float = Field(default=3.0, ge=0)
    gain_adu_per_e: float = Field(default=1.0, gt=0)
    exposure_ms: float = Field(default=100.0, gt=0)
    """Exposure at start."""
    real_exposure_time: bool = True
    """The camera sleeps for its exposure time on each snap, like a real one."""
    nucleus_counts_per_ms: float = Field(default=7.0, gt=0)
    """Mean signal of an interphase nucleus above background, ADU per ms (10x, FITC)."""
    background_counts_per_ms: float = Field(default=0.3, ge=0)
    """Background above the camera offset, ADU per ms (10x, FITC)."""
    brightfield_counts_per_ms: float = Field(default=40.0, gt=0)
    """Transmitted-light level without a sample, ADU per ms."""
    objectives: dict[str, SimObjective] = Field(default_factory=_default_objectives)
    channels: dict[str, ChannelSpec] = Field(default_factory=_default_channels)
    start_objective: str = "10x"
    start_channel: str = "FITC"
    x_limits_um: tuple[float, float] = (-5000.0, 5000.0)
    y_limits_um: tuple[float, float] = (-5000.0, 5000.0)
    z_limits_um: tuple[float, float] = (-500.0, 500.0)
    focus_z_um: float = 0.0
    """Z at which the cells are in focus with an objective of zero parfocal offset."""
    cycle_hours: float = Field(default=22.0, gt=1)
    """Mean length of the whole cell cycle (HeLa: 20-24 h)."""
    mitosis_minutes: dict[str, float] = Field(default_factory=_default_mitosis_minutes)
    """Mean duration of each mitotic phase, minutes (HeLa: mitosis about one hour)."""
    duration_cv: float = Field(default=0.15, ge=0, le=0.5)
    """Cell-to-cell coefficient of variation of phase durations."""
    apoptotic_fraction: float = Field(default=0.03, ge=0, le=0.5)
    """Fraction of cells that are apoptotic (fragmented) at any time."""
    apoptosis_hours: float = Field(default=12.0, gt=0)
    """How long apoptotic fragments stay on the slide before they wash away."""
    drift_um_per_h: float = Field(default=6.0, ge=0)
    """Typical speed of the slow drift of each cell."""
    demo: DemoSpec | None = None
    """Put a few cells into early mitosis near a position (see ``DemoSpec``)."""
    nucleus_bank: Path | None = None
    """Crop bank (.npz) to draw nuclei from; None uses the packaged bank when it exists."""
    use_nucleus_bank: bool = True
    """False draws every nucleus procedurally."""

    @field_validator("mitosis_minutes")
    @classmethod
    def _mitosis_keys(cls, v: dict[str, float]) -> dict[str, float]:
        want = {phases.PROPHASE, phases.PROMETAPHASE, phases.METAPHASE, phases.ANAPHASE,
                phases.TELOPHASE}
        if set(v) != want:
            raise ValueError(f"mitosis_minutes has keys {sorted(v)}: give exactly {sorted(want)}")
        if any(m <= 0 for m in v.values()):
            raise ValueError("mitosis_minutes: every duration must be > 0 minutes")
        return v

    @model_validator(mode="after")
    def _check(self) -> SimConfig:
        if self.start_objective not in self.objectives:
            raise ValueError(
                f"start_objective={self.start_objective!r}: choose one of {sorted(self.objectives)}"
            )
        if self.start_channel not in self.channels:
            raise ValueError(
                f"start_channel={self.start_channel!r}: choose one of {sorted(self.channels)}"
            )
        for name in ("x_limits_um", "y_limits_um", "z_limits_um"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ValueError(f"{name}=({lo}, {hi}): give (low, high) with low < high")
        if not self.z_limits_um[0] <= self.focus_z_um <= self.z_limits_um[1]:
            raise ValueError(f"focus_z_um={self.focus_z_um} lies outside z_limits_um")
        return self

    def focal_plane_um(self, objective: str) -> float:
        """Z (um) at which the cells are in focus with ``objective``."""
        return self.focus_z_um + self.objectives[objective].parfocal_z_offset_um


def demo_config(**overrides: object) -> SimConfig:
    """The demo configuration documented in ``docs/simulator.md``.

    Seed 0, ``time_scale`` 60 (one sim minute per real second) and three cells near stage (0, 0)
    entering metaphase between 2 and 15 sim minutes after the start. Keyword arguments override
    any ``SimConfig`` field.
    """
    values: dict[str, object] = {"seed": 0, "time_scale": 60.0, "demo": DemoSpec()}
    values.update(overrides)
    return SimConfig.model_validate(values)
