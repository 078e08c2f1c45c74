"""The simulator's camera on a real Micro-Manager configuration.

A pymmcore-plus ``UniMMCore`` loads a real hardware configuration (Micro-Manager's demo devices,
or a microscope's own) and takes a Python camera beside its C++ devices. The camera draws the
virtual HeLa slide where the configuration's real XY and Z stages are, at the pixel size of the
real objective preset in place, in the real Channel preset: the hardware path is real, only the
sample is simulated. ``start_on_config`` makes that camera the core's camera and registers the
core with pycromanager's Python engine, as ``start`` does for the simulated microscope.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from smartscope.errors import MicroscopeError
from smartscope.sim import core as simcore
from smartscope.sim._mm import UniMMCore
from smartscope.sim.bank import load_bank
from smartscope.sim.clock import ScaledClock
from smartscope.sim.config import ChannelSpec, DemoSpec, SimConfig, SimObjective
from smartscope.sim.devices import SimCamera
from smartscope.sim.faults import Faults
from smartscope.sim.render import Renderer, View
from smartscope.sim.sample import Sample

log = logging.getLogger(__name__)

#: label of the virtual-sample camera in the core
SAMPLE_CAMERA = "SampleCamera"
#: the simulator's channels; other presets show the chromatin as FITC does
_KNOWN_CHANNELS = SimConfig().channels


@dataclass
class HybridScope:
    """A real configuration with the virtual-sample camera (from ``start_on_config``).

    Attributes
    ----------
    core : UniMMCore
        Registered with pycromanager's Python engine; its camera is ``SAMPLE_CAMERA``.
    config : SimConfig
        The virtual sample's configuration (objectives and channels are the core's presets).
    camera : SimCamera
    """

    core: UniMMCore
    config: SimConfig
    camera: SimCamera


def _magnification(name: str) -> float:
    match = re.search(r"(\d+(?:\.\d+)?)\s*[xX]", name)
    return float(match.group(1)) if match else 10.0


def _sample_config(core: UniMMCore, objective_group: str, channel_group: str,
                   parfocal_um: Mapping[str, float], seed: int, n_cells: int,
                   time_scale: float, sensor_px: int) -> SimConfig:
    groups = list(core.getAvailableConfigGroups())
    for field, group in (("objective_group", objective_group), ("channel_group", channel_group)):
        if group not in groups:
            raise MicroscopeError(
                f"microscope.{field}: '{group}' is not a config group of the configuration "
                f"(groups: {', '.join(groups)}); set microscope.{field} to one of them")
    objectives: dict[str, SimObjective] = {}
    now = core.getCurrentConfig(objective_group)
    for preset in core.getAvailableConfigs(objective_group):
        core.setConfig(objective_group, preset)
        core.waitForSystem()
        ps = float(core.getPixelSizeUm())
        if ps <= 0:
            continue  # no pixel-size calibration: the camera cannot draw the sample there
        mag = _magnification(preset)
        objectives[preset] = SimObjective(magnification=mag, pixel_size_um=ps,
                                          na=min(1.4, 0.03 * mag + 0.1),
                                          parfocal_z_offset_um=parfocal_um.get(preset, 0.0))
    if now:
        core.setConfig(objective_group, now)
        core.waitForSystem()
    if not objectives:
        raise MicroscopeError(
            f"no preset of the '{objective_group}' group has a pixel-size calibration; the "
            "virtual sample needs one (define pixel sizes in Micro-Manager's configuration)"
        )
    channels = {p: _KNOWN_CHANNELS.get(p, ChannelSpec(chromatin_gain=1.0))
                for p in core.getAvailableConfigs(channel_group)} or dict(_KNOWN_CHANNELS)
    start_obj = now if now in objectives else next(iter(objectives))
    start_ch = core.getCurrentConfig(channel_group)
    x, y, z = core.getXPosition(), core.getYPosition(), core.getPosition()
    return SimConfig(
        seed=seed, n_cells=n_cells, time_scale=time_scale, sensor_px=sensor_px,
        objectives=objectives, channels=channels, start_objective=start_obj,
        start_channel=start_ch if start_ch in channels else next(iter(channels)),
        x_limits_um=(x - 1e6, x + 1e6), y_limits_um=(y - 1e6, y + 1e6),
        z_limits_um=(z - 1e4, z + 1e4),
        focus_z_um=z - parfocal_um.get(start_obj, 0.0), demo=DemoSpec(x_um=x, y_um=y),
    )


@contextmanager
def start_on_config(
    mm_dir: str | Path, config_file: str | Path, *, objective_group: str = "Objective",
    channel_group: str = "Channel", parfocal_um: Mapping[str, float] | None = None,
    seed: int = 0, n_cells: int = 300, time_scale: float = 60.0, sensor_px: int = 512,
) -> Iterator[HybridScope]:
    """Load a Micro-Manager configuration with the virtual-sample camera as its camera.

    The sample is in focus at the Z position found after loading (less the parfocal offset of
    the objective in place), and a few cells near the XY position found then enter metaphase
    soon (the simulator's ``DemoSpec``).

    Raises
    ------
    MicroscopeError
        If the configuration does not load, has no XY or focus stage, or no calibrated objective.
    """
    cls = simcore.snake_case_class(UniMMCore)
    core = cls(mm_path=str(mm_dir))  # type: ignore[call-arg]
    registered = False
    try:
        try:
            core.setDeviceAdapterSearchPaths([str(mm_dir)])
            core.loadSystemConfiguration(str(config_file))
        except Exception as e:
            raise MicroscopeError(
                f"Micro-Manager in {mm_dir} failed to load {config_file} "
                f"({' '.join(str(e).split())}); check that the "
                "configuration loads in the Micro-Manager app"
            ) from e
        if not core.getXYStageDevice() or not core.getFocusDevice():
            raise MicroscopeError(
                f"{config_file}: the virtual sample needs an XY stage and a focus device "
                "(Core-XYStage, Core-Focus)"
            )
        config = _sample_config(core, objective_group, channel_group, dict(parfocal_um or {}),
                                seed, n_cells, time_scale, sensor_px)
        sample, renderer = Sample(config), Renderer(config, load_bank(None, True))
        clock = ScaledClock(config.time_scale, config.start_time_s)
        rng = np.random.default_rng([config.seed, 2])

        def frame(exposure_ms: float, shape: tuple[int, int]) -> tuple[np.ndarray, dict[str, str]]:
            objective = core.getCurrentConfig(objective_group)
            channel = core.getCurrentConfig(channel_group)
            if objective not in config.objectives or channel not in config.channels:
                return np.full(shape, int(config.camera_offset_adu), np.uint16), {}
            t = clock.now_s()
            light = bool(core.getAutoShutter()) or bool(core.getShutterOpen())
            view = View(core.getXPosition(), core.getYPosition(), core.getPosition(), objective,
                        channel, exposure_ms, light, shape)
            img = renderer.frame(view, sample.cells_at(t), rng)
            return img, {"SimTime-s": f"{t:.3f}"}

        camera = SimCamera(frame, sensor_px, 10.0, Faults(), True, time.sleep)
        core.loadPyDevice(SAMPLE_CAMERA, camera)
        core.initializeDevice(SAMPLE_CAMERA)
        core.setCameraDevice(SAMPLE_CAMERA)
        # register() only attaches pycromanager's image getters; none of SimCore's own behaviour
        simcore.register(cast(simcore.SimCore, core))
        registered = True
        log.info("%s loaded with the virtual-sample camera (%d cells, seed %d)", config_file,
                 config.n_cells, config.seed)
        yield HybridScope(core, config, camera)
    finally:
        if registered:
            simcore.unregister(core)
        else:
            simcore.release(core)
