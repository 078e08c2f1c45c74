"""The simulated microscope: a virtual slide of HeLa H2B-GFP cells going through the cell cycle,
seen through Python devices (camera, XY and Z stages, objective turret, filters, shutter) loaded
into a real Micro-Manager core that pycromanager's Python engine drives like hardware.

>>> from smartscope.sim import SimConfig, start                  # doctest: +SKIP
>>> with start(SimConfig(seed=0, time_scale=60)) as scope:
...     from pycromanager import Acquisition, multi_d_acquisition_events
...     ...

Public API: ``start``, ``SimMicroscope``, ``SimConfig`` (with ``SimObjective``, ``ChannelSpec``,
``DemoSpec``, ``demo_config``), ``CellTruth``, ``FrameRecord``, ``Faults``, the clocks
``ScaledClock`` and ``ManualClock``, and the device labels / config group names below.
"""

from smartscope.sim.clock import Clock, ManualClock, ScaledClock
from smartscope.sim.config import ChannelSpec, DemoSpec, SimConfig, SimObjective, demo_config
from smartscope.sim.core import (
    CAMERA,
    CHANNEL_GROUP,
    FILTER,
    FOCUS,
    OBJECTIVE,
    OBJECTIVE_GROUP,
    SHUTTER,
    XY_STAGE,
)
from smartscope.sim.faults import Faults
from smartscope.sim.microscope import FrameRecord, SimMicroscope, start
from smartscope.sim.sample import CellTruth

__all__ = [
    "CAMERA",
    "CHANNEL_GROUP",
    "FILTER",
    "FOCUS",
    "OBJECTIVE",
    "OBJECTIVE_GROUP",
    "SHUTTER",
    "XY_STAGE",
    "CellTruth",
    "ChannelSpec",
    "Clock",
    "DemoSpec",
    "Faults",
    "FrameRecord",
    "ManualClock",
    "ScaledClock",
    "SimConfig",
    "SimObjective",
    "SimMicroscope",
    "demo_config",
    "start",
]
