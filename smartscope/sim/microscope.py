"""The simulated microscope: devices on a real MMCore, a virtual sample, and ``start()``."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from smartscope.sim import core as simcore
from smartscope.sim.bank import load_bank
from smartscope.sim.clock import Clock, ScaledClock
from smartscope.sim.config import SimConfig
from smartscope.sim.devices import SimCamera
from smartscope.sim.faults import Faults
from smartscope.sim.render import Renderer, View, pixel_positions
from smartscope.sim.rig import ScopeState, Stages, install
from smartscope.sim.sample import CellTruth, Sample

log = logging.getLogger(__name__)

#: How many recent frames ``SimMicroscope.frames`` remembers.
FRAME_HISTORY = 1000


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One image the camera produced: its number (from 1), sim time (s) and what it looked at.

    Image-processing hooks run behind the camera, so the microscope may have moved on by the time
    a hook sees a frame; ``truth(frame=record)`` gives the cells as they were for that frame.
    """

    index: int
    t_s: float
    view: View


class SimMicroscope(ScopeState):
    """A running simulated microscope (get one from ``smartscope.sim.start``).

    Attributes
    ----------
    core : UniMMCore
        The Micro-Manager core holding the devices, registered with pycromanager's Python
        engine, so ``pycromanager.Acquisition`` runs on it.
    config : SimConfig
    clock : Clock
        Sim time source (``clock.now_s()``).
    faults : Faults
        Fault injection (camera timeout, wrong image size, stuck turret, refusing stages).
    sample : Sample
        The virtual slide.
    """

    def __init__(self, config: SimConfig, core: simcore.SimCore, clock: Clock, faults: Faults,
                 sample: Sample, renderer: Renderer) -> None:
        self.config = config
        self.core = core
        self.clock = clock
        self.faults = faults
        self.sample = sample
        self._renderer = renderer
        self._lock = threading.Lock()
        self._rng = np.random.default_rng([config.seed, 2])
        self._frames: deque[FrameRecord] = deque(maxlen=FRAME_HISTORY)

    # -- state (time_s, objective, channel: ScopeState) -------------------------------------

    @property
    def pixel_size_um(self) -> float:
        """True pixel size of the objective physically in place (um/px)."""
        return self.config.objectives[self.objective].pixel_size_um

    def view(self, exposure_ms: float | None = None, shape: tuple[int, int] | None = None) -> View:
        """What the camera would look at now."""
        dev = self.devices
        x, y = dev.xy.physical_um
        light = dev.shutter.get_open() or bool(self.core.getAutoShutter())
        exp = exposure_ms if exposure_ms is not None else float(self.core.getExposure())
        n = self.config.sensor_px
        return View(x, y, dev.z.physical_um, self.objective, self.channel, exp, light,
                    shape or (n, n))

    # -- ground truth and images ------------------------------------------------------------

    @property
    def frames(self) -> list[FrameRecord]:
        """The most recent camera frames (up to ``FRAME_HISTORY``), oldest first."""
        with self._lock:
            return list(self._frames)

    def truth(self, t_s: float | None = None, in_view: bool = False,
              frame: FrameRecord | None = None) -> list[CellTruth]:
        """Ground truth of the cells at sim time ``t_s`` (default: now).

        Parameters
        ----------
        t_s : float, optional
            Sim time (s).
        in_view : bool
            Only the cells whose centre lies in the image, with ``col_px``/``row_px`` set (see
            ``smartscope.sim.render`` for the geometry).
        frame : FrameRecord, optional
            Use the time and view of this frame (from ``frames``) instead of now.
        """
        v: View | None
        if frame is not None:
            t, v = frame.t_s, frame.view
        else:
            t = self.time_s if t_s is None else float(t_s)
            v = self.view() if in_view else None
        with self._lock:
            cells = self.sample.cells_at(t)
        if not in_view or v is None:
            return cells
        h, w = v.shape
        ps = self.config.objectives[v.objective].pixel_size_um
        placed = pixel_positions(cells, v.stage_x_um, v.stage_y_um, ps, v.shape)
        return [c for c in placed if 0 <= c.col_px < w and 0 <= c.row_px < h]  # type: ignore[operator]

    def expected_image(self, t_s: float | None = None,
                       exposure_ms: float | None = None) -> np.ndarray:
        """Noise-free signal above the camera offset for the current view (float32, ADU)."""
        t = self.time_s if t_s is None else float(t_s)
        with self._lock:
            cells = self.sample.cells_at(t)
            return self._renderer.expected(self.view(exposure_ms), cells)

    def _frame(self, exposure_ms: float,
               shape: tuple[int, int]) -> tuple[np.ndarray, Mapping[str, str]]:
        t = self.time_s
        v = self.view(exposure_ms, shape)
        with self._lock:
            cells = self.sample.cells_at(t)
            img = self._renderer.frame(v, cells, self._rng)
            index = self._frames[-1].index + 1 if self._frames else 1
            self._frames.append(FrameRecord(index, t, v))
        meta = {"SimTime-s": f"{t:.3f}", "SimObjective": v.objective, "SimChannel": v.channel,
                "SimFrame": str(index)}
        return img, meta

    # -- assembly ---------------------------------------------------------------------------

    def _load_devices(self, sleep: Callable[[float], None]) -> None:
        cfg = self.config
        camera = SimCamera(self._frame, cfg.sensor_px, cfg.exposure_ms, self.faults,
                           cfg.real_exposure_time, sleep)
        stages = Stages(cfg.x_limits_um, cfg.y_limits_um, cfg.z_limits_um,
                        cfg.focal_plane_um(cfg.start_objective))
        self._devices = install(self.core, camera, self.faults, stages,
                                objectives=cfg.objectives, start_objective=cfg.start_objective,
                                channels=list(cfg.channels), start_channel=cfg.start_channel,
                                exposure_ms=cfg.exposure_ms)
        if cfg.demo is not None:
            self.core.setXYPosition(cfg.demo.x_um, cfg.demo.y_um)


@contextmanager
def start(config: SimConfig | None = None, *, clock: Clock | None = None,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[SimMicroscope]:
    """Start the simulated microscope; stop it (always) when the block ends.

    Parameters
    ----------
    config : SimConfig, optional
        Defaults to ``SimConfig()``.
    clock : Clock, optional
        Sim time source; default ``ScaledClock(config.time_scale, config.start_time_s)``.
    sleep : callable
        Used by the camera to wait out exposures (``config.real_exposure_time``).

    Yields
    ------
    SimMicroscope
        ``.core`` is registered with pycromanager: ``pycromanager.Acquisition`` runs on it.

    Raises
    ------
    MicroscopeError
        If another pycromanager Python-backend core is running in this process, or the
        nucleus bank cannot be read.

    Examples
    --------
    >>> from smartscope.sim import SimConfig, start          # doctest: +SKIP
    >>> with start(SimConfig(seed=1)) as scope:
    ...     scope.core.snapImage()
    ...     img = scope.core.getImage()
    """
    config = config if config is not None else SimConfig()
    clock = clock if clock is not None else ScaledClock(config.time_scale, config.start_time_s)
    bank = load_bank(config.nucleus_bank, config.use_nucleus_bank)
    core = simcore.new_core({k: o.pixel_size_um for k, o in config.objectives.items()})
    scope = SimMicroscope(config, core, clock, Faults(), Sample(config), Renderer(config, bank))
    with simcore.serving(core, lambda: scope._load_devices(sleep), "simulated microscope"):
        log.info("simulated microscope started: %d cells, seed %d, time_scale %g",
                 config.n_cells, config.seed, config.time_scale)
        yield scope
