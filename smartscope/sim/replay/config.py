"""Configuration of the replay microscope (frozen pydantic, ``extra="forbid"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from smartscope.frozen import FrozenModel
from smartscope.sim.config import SimObjective

#: the channel presets a replay microscope offers by default (every one shows the recording)
DEFAULT_CHANNELS = ("FITC", "DAPI", "Rhodamine", "Cy5", "Brightfield")


class ReplayConfig(FrozenModel):
    """Everything the replay microscope needs; pass it to ``smartscope.sim.replay.start``.

    The recording was made with ``objective`` at ``pixel_size_um``; its centre lies at stage
    ``centre_um``. Stage coordinates are micrometres.
    """

    movie: Path
    """TIFF stack (T x Y x X), NDTiff data set folder, or folder of one-frame TIFF files."""
    frame_pattern: str = "*.tif*"
    """Which files of a folder are frames (glob), e.g. ``*_h2b.tif``."""
    pixel_size_um: float | None = Field(None, gt=0)
    """Recorded pixel size, um/px. None: from the movie's metadata (NDTiff), else an error."""
    frame_interval_s: float | None = Field(None, gt=0)
    """Time between recorded frames, s. None: from the movie's metadata, else an error."""
    objective: str = "10x"
    """The objective preset the movie was recorded with."""
    objectives: dict[str, SimObjective] = Field(default_factory=dict)
    """Every objective preset of the turret (the recorded one included); pixel sizes of the
    others are those of the presets. Empty: the recorded objective only."""
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    """Channel presets; the recording has one channel, shown whatever the preset."""
    start_channel: str | None = None
    sensor_shape_px: tuple[int, int] | None = None
    """Camera sensor (rows, cols); None: the recording's frame size."""
    centre_um: tuple[float, float] = (0.0, 0.0)
    """Stage position (x, y) of the recording's centre, um."""
    time_scale: float = Field(1.0, gt=0)
    """Sample seconds per real second, counted from the first camera frame."""
    at_end: Literal["stop", "loop"] = "stop"
    """After the last recorded frame: hold it (and a run ends its screening with the recording),
    or start the recording over."""
    background_adu: float | None = None
    """Level seen outside the recorded field, ADU; None: estimated from the first frame."""
    focus_z_um: float = 0.0
    """Z at which the recording is in focus with the recorded objective."""
    x_limits_um: tuple[float, float] = (-5000.0, 5000.0)
    y_limits_um: tuple[float, float] = (-5000.0, 5000.0)
    z_limits_um: tuple[float, float] = (-500.0, 500.0)
    exposure_ms: float = Field(100.0, gt=0)
    real_exposure_time: bool = True
    """The camera takes its exposure time, like a real one."""
    seed: int = 0
    """Seeds the background noise outside the recorded field."""

    @model_validator(mode="after")
    def _check(self) -> ReplayConfig:
        if self.objectives and self.objective not in self.objectives:
            raise ValueError(f"objective={self.objective!r} is not one of the objectives "
                             f"{sorted(self.objectives)}")
        if self.start_channel is not None and self.start_channel not in self.channels:
            raise ValueError(f"start_channel={self.start_channel!r}: choose one of "
                             f"{list(self.channels)}")
        if self.sensor_shape_px is not None and min(self.sensor_shape_px) < 16:
            raise ValueError(f"sensor_shape_px={self.sensor_shape_px}: give rows, cols >= 16")
        for name in ("x_limits_um", "y_limits_um", "z_limits_um"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ValueError(f"{name}=({lo}, {hi}): give (low, high) with low < high")
        return self
