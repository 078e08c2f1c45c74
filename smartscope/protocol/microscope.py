"""The ``microscope`` section: which microscope, objectives, camera orientation, stage limits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from smartscope.protocol._base import Frozen, resolve_path

DEFAULT_BRIDGE_PORT = 4827
"""Pycro-Manager's default bridge port in the Micro-Manager app."""

MAX_PARFOCAL_OFFSET_UM = 200.0
"""Largest parfocal z offset accepted, um: objectives of one turret are parfocal within tens of
micrometres; a larger value is a typo that would drive the objective into the sample."""


class ObjectiveSpec(Frozen):
    """What smartscope needs to know about one objective preset."""

    parfocal_z_offset_um: float = Field(
        0.0, ge=-MAX_PARFOCAL_OFFSET_UM, le=MAX_PARFOCAL_OFFSET_UM,
        description="focus of this objective relative to the reference objective, um; switching "
        "A -> B moves z by offset(B) - offset(A)",
    )
    pixel_size_um: float | None = Field(
        None, gt=0, description="overrides the microscope's pixel-size calibration, um/px"
    )


class CameraOrientation(Frozen):
    """How image axes map onto stage axes (applied before scaling by the pixel size).

    With the defaults, image +x (column) is stage +x and image +y (row) is stage +y.
    Flips apply first, then a counter-clockwise rotation.
    """

    flip_x: bool = False
    flip_y: bool = False
    rotation_deg: Literal[0, 90, 180, 270] = 0


class StageLimits(Frozen):
    """Safe travel, um; a None axis uses the stage's own limits (when the stage reports them)."""

    x_um: tuple[float, float] | None = None
    y_um: tuple[float, float] | None = None
    z_um: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> StageLimits:
        for name in ("x_um", "y_um", "z_um"):
            lim = getattr(self, name)
            if lim is not None and not lim[0] < lim[1]:
                raise ValueError(f"{name} must be [low, high] with low < high, got {list(lim)}")
        return self


class _MicroscopeBase(Frozen):
    objective_group: str = Field("Objective", description="config group of the objective turret")
    channel_group: str = Field("Channel", description="config group of channels / modalities")
    objectives: dict[str, ObjectiveSpec] = Field(
        default_factory=dict,
        description="per objective preset: parfocal z offset and optional pixel size override",
    )
    camera: CameraOrientation = CameraOrientation()
    stage_limits: StageLimits = StageLimits()
    max_focus_travel_um: float = Field(
        100.0, gt=0, le=2000,
        description="no z target (objective switch, z-stack, screening position) may lie further "
        "than this from the focus at the start of the run, um",
    )
    stall_timeout_s: float = Field(
        60.0, gt=0, le=86400,
        description="a frame whose image has not arrived this many seconds after its hardware or "
        "camera step started ends the run as a device failure; raise it for long exposures",
    )


class SimulatedMicroscope(_MicroscopeBase):
    """The simulated microscope (a real MMCore with Python devices and a virtual sample)."""

    type: Literal["simulated"] = "simulated"
    seed: int = Field(0, description="seed of the virtual sample and camera noise")
    n_cells: int = Field(300, ge=1, le=20000, description="cells on the virtual slide")
    time_scale: float = Field(
        60.0, gt=0, description="simulated seconds per real second (cell cycle runs faster)"
    )
    sensor_px: int = Field(1024, ge=64, le=4096, description="camera sensor side, px")
    demo_cells: int = Field(
        3, ge=0, le=20,
        description="cells near the first screening position made to enter metaphase in the "
                    "first 15 sim min (the demo); 0: only the sample's own divisions")


class _RealMicroscope(_MicroscopeBase):
    """A real microscope: the protocol must give the stage's safe travel on every axis."""

    @model_validator(mode="after")
    def _limits_given(self) -> _RealMicroscope:
        lim = self.stage_limits
        missing = [a for a in ("x_um", "y_um", "z_um") if getattr(lim, a) is None]
        if missing:
            raise ValueError(
                f"a real microscope needs stage limits on x, y and z (missing: "
                f"{', '.join(missing)}); set microscope.stage_limits to the safe travel of your "
                "stage, e.g. {x_um: [-20000, 20000], y_um: [-20000, 20000], z_um: [-50, 3000]} "
                "(read them off the stage with the objective lowered)"
            )
        return self


class VirtualSample(Frozen):
    """The simulator's camera in place of the configuration's camera: a virtual HeLa slide,
    seen where the real stages are, at the real objective's pixel size and focus.

    For dry runs of a real configuration without a sample (Micro-Manager's demo devices, or a
    microscope with the lamp off); every other device stays real.
    """

    seed: int = Field(0, description="seed of the virtual sample and camera noise")
    n_cells: int = Field(300, ge=1, le=20000, description="cells on the virtual slide")
    time_scale: float = Field(
        60.0, gt=0, description="simulated seconds per real second (cell cycle runs faster)"
    )
    sensor_px: int = Field(512, ge=64, le=4096, description="camera sensor side, px")


class MicroManagerMicroscope(_RealMicroscope):
    """The running Micro-Manager app, through Pycro-Manager's bridge (Java backend)."""

    type: Literal["micromanager"] = "micromanager"
    port: int = Field(DEFAULT_BRIDGE_PORT, ge=1, le=65535, description="bridge port")
    timeout_s: float = Field(5.0, gt=0, description="how long to wait for the bridge, s")


class HeadlessMicroscope(_RealMicroscope):
    """Micro-Manager without its GUI: pycromanager's Python backend on a pymmcore core."""

    type: Literal["headless"] = "headless"
    mm_dir: Path = Field(description="Micro-Manager installation folder (device adapters)")
    config_file: Path = Field(description="hardware configuration file (.cfg)")
    virtual_sample: VirtualSample | None = Field(
        None, description="replace the configuration's camera by the simulator's virtual-sample "
        "camera (dry run without a sample); the other devices stay real",
    )

    @field_validator("mm_dir", "config_file", mode="after")
    @classmethod
    def _relative_to_file(cls, v: Path, info: ValidationInfo) -> Path:
        return resolve_path(v, info)


class ReplayMicroscope(_MicroscopeBase):
    """A recorded time-lapse replayed as the sample of the simulated microscope's devices."""

    type: Literal["replay"] = "replay"
    movie: Path = Field(
        description="TIFF stack (T x Y x X), NDTiff data set folder, or folder of one-frame TIFF "
        "files; relative to the protocol file"
    )
    frame_pattern: str = Field("*.tif*", description="which files of a folder are frames (glob)")
    pixel_size_um: float | None = Field(
        None, gt=0, description="recorded pixel size, um/px (an NDTiff data set may carry it)"
    )
    frame_interval_s: float | None = Field(
        None, gt=0, description="time between recorded frames, s (an NDTiff data set may carry it)"
    )
    objective: str | None = Field(
        None, description="objective preset the movie was recorded with (default: screening's)"
    )
    time_scale: float | None = Field(
        None, gt=0, description="sample seconds per real second from the first image; default: "
        "frame_interval_s / screening.interval_s (each screening time point shows the next frame)"
    )
    sensor_px: tuple[int, int] | None = Field(
        None, description="camera sensor [rows, cols]; default: the recording's frame size"
    )
    centre_um: tuple[float, float] = Field(
        (0.0, 0.0), description="stage position [x, y] of the recording's centre, um"
    )
    at_end: Literal["stop", "loop"] = Field(
        "stop", description="stop: screening ends with the recording (follow-up frames after it "
        "see the last frame); loop: the recording starts over"
    )
    truth: Path | None = Field(
        None, description="labelled nuclei CSV (frame, y, x, phase; px of the recording) to "
        "score event capture; relative to the protocol file"
    )
    match_radius_um: float = Field(
        9.0, gt=0, description="a trigger's cell is the labelled nucleus within this distance, um"
    )
    link_um: float = Field(
        10.0, gt=0, description="labels of consecutive frames within this distance are one cell "
        "(for the episodes that recall counts), um"
    )
    background_adu: float | None = Field(
        None, description="level outside the recorded field; default: estimated from the movie"
    )
    seed: int = Field(0, description="seeds the background noise outside the recorded field")

    @field_validator("movie", "truth", mode="after")
    @classmethod
    def _relative_to_file(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else resolve_path(v, info)

    @field_validator("sensor_px", mode="before")
    @classmethod
    def _square(cls, v: object) -> object:
        return (v, v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _pixel_size_known(self) -> ReplayMicroscope:
        ndtiff = self.movie.is_dir() and any(self.movie.glob("*NDTiff.index"))
        if self.pixel_size_um is None and not ndtiff:
            raise ValueError(
                f"pixel_size_um is missing: the movie {self.movie.name} does not carry its pixel "
                "size; set microscope.pixel_size_um (um per recorded pixel, e.g. 0.645 for a 10x "
                "objective on a 6.45 um camera pixel)"
            )
        if self.frame_interval_s is None and not ndtiff:
            raise ValueError(
                f"frame_interval_s is missing: the movie {self.movie.name} does not carry its "
                "frame interval; set microscope.frame_interval_s (seconds between frames)"
            )
        if self.sensor_px is not None and min(self.sensor_px) < 16:
            raise ValueError(f"sensor_px={list(self.sensor_px)}: give [rows, cols], each >= 16")
        if self.camera != CameraOrientation():
            raise ValueError(
                f"camera={self.camera.model_dump()}: the replay camera shows the recording "
                "upright (image x = stage x, image y = stage y); remove microscope.camera"
            )
        return self


Microscope = Annotated[
    SimulatedMicroscope | MicroManagerMicroscope | HeadlessMicroscope | ReplayMicroscope,
    Field(discriminator="type"),
]
