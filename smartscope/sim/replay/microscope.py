"""The replay microscope: a recorded time-lapse seen through the simulator's devices on a real
MMCore, driven by pycromanager's Python engine like hardware."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from smartscope.errors import RecordingError
from smartscope.sim import core as simcore
from smartscope.sim.clock import Clock, ScaledClock
from smartscope.sim.config import SimObjective, guessed_objective
from smartscope.sim.devices import SimCamera
from smartscope.sim.faults import Faults
from smartscope.sim.replay.config import ReplayConfig
from smartscope.sim.replay.movie import Movie, open_movie
from smartscope.sim.replay.optics import Window, render
from smartscope.sim.rig import ScopeState, Stages, install

log = logging.getLogger(__name__)

FRAME_HISTORY = 100_000


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    """One camera image: its number (from 1), sample time (s), the recorded frame shown
    (0-based), whether the recording had ended, and where the camera looked."""

    index: int
    t_s: float
    movie_frame: int
    past_end: bool
    stage_x_um: float
    stage_y_um: float
    z_um: float
    objective: str
    channel: str
    pixel_size_um: float
    shape: tuple[int, int]


class FirstFrameClock:
    """Sample time = ``time_scale`` x real seconds since the first camera frame (0 before it).

    The recording starts when the acquisition takes its first image, whatever the set-up time.
    """

    def __init__(self, time_scale: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.time_scale = float(time_scale)
        self._monotonic = monotonic
        self._clock: ScaledClock | None = None
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Start counting (idempotent): called by the camera on its first frame."""
        with self._lock:
            if self._clock is None:
                self._clock = ScaledClock(self.time_scale, 0.0, self._monotonic)

    def now_s(self) -> float:
        """Current sample time, seconds."""
        with self._lock:
            return 0.0 if self._clock is None else self._clock.now_s()


class ReplayCamera(SimCamera):
    """A camera of any (rows, cols) sensor and 8- or 16-bit depth."""

    def __init__(self, frame_source, shape: tuple[int, int], dtype: np.dtype,  # noqa: ANN001
                 exposure_ms: float, faults: Faults, real_exposure_time: bool,
                 sleep: Callable[[float], None]) -> None:
        super().__init__(frame_source, max(shape), exposure_ms, faults, real_exposure_time, sleep)
        self._shape = (int(shape[0]), int(shape[1]))
        self._dtype = np.dtype(dtype)

    def sensor_shape(self) -> tuple[int, int]:
        return self._faults.image_shape(self._shape)

    def dtype(self) -> np.dtype:
        return self._dtype


def objective_table(config: ReplayConfig, pixel_size_um: float) -> dict[str, SimObjective]:
    """The turret: the configured objectives, the recorded one at the recording's pixel size."""
    table = dict(config.objectives)
    rec = table.get(config.objective)
    if rec is None:
        rec = guessed_objective(config.objective, pixel_size_um)
    table[config.objective] = rec.model_copy(update={"pixel_size_um": pixel_size_um})
    return table


class ReplayMicroscope(ScopeState):
    """A running replay microscope (get one from ``smartscope.sim.replay.start``).

    Attributes
    ----------
    core : UniMMCore
        Registered with pycromanager's Python engine.
    config : ReplayConfig
    movie : Movie
    clock : Clock
        Sample time (s): ``time_scale`` x real seconds since the first image by default.
    pixel_size_um, frame_interval_s : float
        Of the recording.
    objectives : dict
        Objective label -> ``SimObjective`` (pixel size, NA, parfocal offset).
    """

    def __init__(self, config: ReplayConfig, movie: Movie, core: simcore.SimCore, clock: Clock,
                 faults: Faults, pixel_size_um: float, frame_interval_s: float,
                 objectives: dict[str, SimObjective]) -> None:
        self.config = config
        self.movie = movie
        self.core = core
        self.clock = clock
        self.faults = faults
        self.pixel_size_um = pixel_size_um
        self.frame_interval_s = frame_interval_s
        self.objectives = objectives
        self.sensor_shape = config.sensor_shape_px or movie.shape
        self._lock = threading.Lock()
        self._rng = np.random.default_rng([config.seed, 7])
        self._frames: deque[ReplayFrame] = deque(maxlen=FRAME_HISTORY)
        bg, noise = movie.background()
        self.background_adu = bg if config.background_adu is None else config.background_adu
        self.background_noise_adu = noise

    # -- time -------------------------------------------------------------------------------

    @property
    def duration_s(self) -> float:
        """Sample time the recording covers: frame k is shown from k to k + 1 intervals."""
        return self.movie.n_frames * self.frame_interval_s

    def movie_frame(self, t_s: float) -> tuple[int, bool]:
        """(recorded frame shown at sample time ``t_s``, whether the recording has ended).

        Frame k is shown for k <= t / interval < k + 1: the latest frame recorded at or before
        ``t_s``. After the end: the last frame (``at_end: stop``) or the recording again
        (``loop``).
        """
        k = max(0, math.floor(t_s / self.frame_interval_s + 1e-9))
        n = self.movie.n_frames
        if k < n:
            return k, False
        if self.config.at_end == "loop":
            return k % n, False
        return n - 1, True

    # -- optics (objective, channel: ScopeState) --------------------------------------------

    def focal_plane_um(self, objective: str) -> float:
        """Z at which the recording is in focus with ``objective`` (parfocal offsets)."""
        rec = self.objectives[self.config.objective].parfocal_z_offset_um
        return self.config.focus_z_um + self.objectives[objective].parfocal_z_offset_um - rec

    def blur_um(self, objective: str, z_um: float) -> float:
        """Defocus blur (sigma, um) added to the recording (the simulator's model)."""
        dz = z_um - self.focal_plane_um(objective)
        return min(25.0, 0.6 * self.objectives[objective].na * abs(dz))

    def magnification(self, objective: str) -> float:
        """Recorded pixels per camera pixel, inverted: > 1 means interpolated (no new detail)."""
        return self.pixel_size_um / self.objectives[objective].pixel_size_um

    def image(self, t_s: float, x_um: float, y_um: float, z_um: float, objective: str,
              shape: tuple[int, int] | None = None) -> tuple[np.ndarray, int, bool]:
        """What the camera sees at sample time ``t_s``: (image as the movie's dtype, recorded
        frame index, past the end)."""
        k, past = self.movie_frame(t_s)
        window = Window(x_um, y_um, self.objectives[objective].pixel_size_um,
                        shape or self.sensor_shape)
        img = render(self.movie.frame(k), window, recorded_pixel_um=self.pixel_size_um,
                     centre_um=self.config.centre_um, blur_um=self.blur_um(objective, z_um),
                     background=self.background_adu, noise=self.background_noise_adu,
                     rng=self._rng)
        top = float(np.iinfo(self.movie.dtype).max)
        return np.clip(np.rint(img), 0, top).astype(self.movie.dtype), k, past

    # -- records ----------------------------------------------------------------------------

    @property
    def frames(self) -> list[ReplayFrame]:
        """Every camera image so far (up to ``FRAME_HISTORY``), oldest first."""
        with self._lock:
            return list(self._frames)

    def _frame(self, exposure_ms: float,
               shape: tuple[int, int]) -> tuple[np.ndarray, Mapping[str, str]]:
        begin = getattr(self.clock, "begin", None)
        if begin is not None:
            begin()
        t = self.time_s
        x, y = self.devices.xy.physical_um
        z, obj, ch = self.devices.z.physical_um, self.objective, self.channel
        with self._lock:
            img, k, past = self.image(t, x, y, z, obj, shape)
            index = self._frames[-1].index + 1 if self._frames else 1
            self._frames.append(ReplayFrame(index, t, k, past, x, y, z, obj, ch,
                                            self.objectives[obj].pixel_size_um, shape))
        if past and not any(f.past_end for f in list(self._frames)[:-1]):
            log.warning("replay: the recording ended at sample time %.0f s (%d frames); the "
                        "camera holds the last frame", self.duration_s, self.movie.n_frames)
        mag = self.magnification(obj)
        meta = {"ReplayFrame": str(k), "ReplaySampleTime-s": f"{t:.3f}",
                "ReplayPastEnd": "1" if past else "0", "ReplayMagnification": f"{mag:.4g}",
                "ReplayInterpolated": "1" if abs(mag - 1) > 1e-9 else "0",
                "SimFrame": str(index)}
        return img, meta

    # -- assembly ---------------------------------------------------------------------------

    def _load_devices(self, sleep: Callable[[float], None]) -> None:
        cfg = self.config
        camera = ReplayCamera(self._frame, self.sensor_shape, self.movie.dtype, cfg.exposure_ms,
                              self.faults, cfg.real_exposure_time, sleep)
        stages = Stages(cfg.x_limits_um, cfg.y_limits_um, cfg.z_limits_um,
                        self.focal_plane_um(cfg.objective))
        self._devices = install(self.core, camera, self.faults, stages,
                                objectives=self.objectives, start_objective=cfg.objective,
                                channels=cfg.channels,
                                start_channel=cfg.start_channel or cfg.channels[0],
                                exposure_ms=cfg.exposure_ms)
        self.core.setXYPosition(*cfg.centre_um)


def _resolve(config: ReplayConfig, movie: Movie) -> tuple[float, float]:
    pixel = config.pixel_size_um or movie.pixel_size_um
    if pixel is None:
        raise RecordingError(
            f"{movie.path}: the pixel size of the recording is not known; set "
            "microscope.pixel_size_um (um per recorded pixel, e.g. 0.645 for a 10x objective on a "
            "6.45 um camera pixel) or pass --pixel-size-um"
        )
    interval = config.frame_interval_s or movie.frame_interval_s
    if interval is None:
        raise RecordingError(
            f"{movie.path}: the time between recorded frames is not known; set "
            "microscope.frame_interval_s (seconds) or pass --frame-interval-s"
        )
    return float(pixel), float(interval)


@contextmanager
def start(config: ReplayConfig, *, clock: Clock | None = None,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[ReplayMicroscope]:
    """Start the replay microscope; stop it (always) when the block ends.

    Parameters
    ----------
    config : ReplayConfig
    clock : Clock, optional
        Sample-time source; default ``FirstFrameClock(config.time_scale)`` (0 at the first
        image).
    sleep : callable
        Used by the camera to wait out exposures.

    Raises
    ------
    RecordingError
        The movie cannot be read, is not T x Y x X, or its pixel size or frame interval is
        unknown.
    MicroscopeError
        Another pycromanager Python-backend core is running in this process.
    """
    movie = open_movie(config.movie, config.frame_pattern)
    try:
        pixel, interval = _resolve(config, movie)
        objectives = objective_table(config, pixel)
        core = simcore.new_core({k: o.pixel_size_um for k, o in objectives.items()})
        scope = ReplayMicroscope(config, movie, core,
                                 clock if clock is not None else FirstFrameClock(config.time_scale),
                                 Faults(), pixel, interval, objectives)
        with simcore.serving(core, lambda: scope._load_devices(sleep), "replay microscope"):
            log.info("replay microscope started: %s, %d frames of %d x %d px at %g um/px, "
                     "%g s apart", movie.path, movie.n_frames, *movie.shape, pixel, interval)
            yield scope
    finally:
        movie.close()
