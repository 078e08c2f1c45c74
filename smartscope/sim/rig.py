"""The devices both the simulated and the replay microscope put on their MMCore.

``install`` loads a camera, an XY stage, a focus drive, an objective turret, a filter wheel and a
shutter as Micro-Manager's demo configuration names them, sets the core's roles, the
``Objective``/``Channel`` config groups, one pixel-size config per objective and the exposure.
``ScopeState`` is what both microscopes read back from those devices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from smartscope.sim import core as simcore
from smartscope.sim.clock import Clock
from smartscope.sim.config import SimObjective
from smartscope.sim.devices import SimCamera, SimShutter, SimStateDevice, SimXYStage, SimZStage
from smartscope.sim.faults import Faults


@dataclass(frozen=True, slots=True)
class Devices:
    """The Python devices loaded on the core (the camera is the caller's)."""

    xy: SimXYStage
    z: SimZStage
    objective: SimStateDevice
    filter: SimStateDevice
    shutter: SimShutter


@dataclass(frozen=True, slots=True)
class Stages:
    """Travel limits (um, (low, high)) and the focus drive's starting position (um)."""

    x_limits_um: tuple[float, float]
    y_limits_um: tuple[float, float]
    z_limits_um: tuple[float, float]
    z_start_um: float


def install(core: simcore.SimCore, camera: SimCamera, faults: Faults, stages: Stages, *,
            objectives: Mapping[str, SimObjective], start_objective: str,
            channels: Sequence[str], start_channel: str, exposure_ms: float) -> Devices:
    """Load the devices on ``core``, initialise them and configure the core around them.

    Parameters
    ----------
    core : SimCore
        A fresh core from ``smartscope.sim.core.new_core``.
    camera : SimCamera
        Loaded as ``Camera``.
    faults : Faults
        Shared with the stages and the turret (refusing stages, stuck turret).
    stages : Stages
    objectives : mapping
        Turret labels, in position order, to their optics (pixel size for the pixel-size configs).
    start_objective, start_channel : str
        Labels in place at start.
    channels : sequence of str
        Filter-wheel labels, in position order (the ``Channel`` presets).
    exposure_ms : float
        The core's exposure at start.

    Returns
    -------
    Devices
    """
    labels = list(objectives)
    channel_labels = list(channels)
    devices = Devices(
        SimXYStage(stages.x_limits_um, stages.y_limits_um, faults),
        SimZStage(stages.z_limits_um, stages.z_start_um, faults),
        SimStateDevice(labels, labels.index(start_objective), faults.check_objective),
        SimStateDevice(channel_labels, channel_labels.index(start_channel)),
        SimShutter(),
    )
    for label, dev in ((simcore.CAMERA, camera), (simcore.XY_STAGE, devices.xy),
                       (simcore.FOCUS, devices.z), (simcore.OBJECTIVE, devices.objective),
                       (simcore.FILTER, devices.filter), (simcore.SHUTTER, devices.shutter)):
        core.loadPyDevice(label, dev)
    core.initializeAllDevices()
    core.setCameraDevice(simcore.CAMERA)
    core.setXYStageDevice(simcore.XY_STAGE)
    core.setFocusDevice(simcore.FOCUS)
    core.setShutterDevice(simcore.SHUTTER)
    core.setAutoShutter(True)
    for group, device, group_labels in (
            (simcore.OBJECTIVE_GROUP, simcore.OBJECTIVE, labels),
            (simcore.CHANNEL_GROUP, simcore.FILTER, channel_labels)):
        core.defineConfigGroup(group)
        for label in group_labels:
            core.defineConfig(group, label, device, "Label", label)
    for label, spec in objectives.items():
        core.definePixelSizeConfig(f"Res{label}", simcore.OBJECTIVE, "Label", label)
        core.setPixelSizeUm(f"Res{label}", spec.pixel_size_um)
    core.setExposure(exposure_ms)
    return devices


class ScopeState:
    """Time and optics read back from the installed devices (shared by both microscopes)."""

    clock: Clock
    _devices: Devices | None = None

    @property
    def time_s(self) -> float:
        """Time now (s) on the microscope's clock."""
        return self.clock.now_s()

    @property
    def devices(self) -> Devices:
        """The loaded devices (set once the microscope has started)."""
        assert self._devices is not None, "the microscope's devices are not loaded yet"
        return self._devices

    @property
    def objective(self) -> str:
        """Label of the objective physically in place (differs from the core's label only
        under ``faults.objective_stuck(silent=True)``)."""
        return self.devices.objective.current_label

    @property
    def channel(self) -> str:
        """Label of the ``Channel`` preset in place."""
        return self.devices.filter.current_label
