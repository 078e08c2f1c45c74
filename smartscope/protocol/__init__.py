"""The protocol: what a smart acquisition does, as a frozen, validated pydantic model.

Read one with ``load_protocol(path)``; every problem is a one-line ``ProtocolError``.
"""

from smartscope.protocol.actions import (
    ACTION_TYPES,
    Action,
    Burst,
    CentreOnCell,
    ChangeInterval,
    Confirm,
    ReturnToScreening,
    SetChannel,
    Stop,
    ZStack,
)
from smartscope.protocol.load import check_phases, load_protocol, parse_protocol
from smartscope.protocol.microscope import (
    DEFAULT_BRIDGE_PORT,
    CameraOrientation,
    HeadlessMicroscope,
    MicroManagerMicroscope,
    Microscope,
    ObjectiveSpec,
    ReplayMicroscope,
    SimulatedMicroscope,
    StageLimits,
    VirtualSample,
)
from smartscope.protocol.schema import (
    PROTOCOL_VERSION,
    Detection,
    Grid,
    ModelSpec,
    Output,
    Position,
    Protocol,
    Screening,
    Tracking,
    Trigger,
)

__all__ = [
    "ACTION_TYPES", "DEFAULT_BRIDGE_PORT", "PROTOCOL_VERSION", "Action", "Burst",
    "CameraOrientation", "CentreOnCell", "ChangeInterval", "Confirm", "Detection", "Grid",
    "HeadlessMicroscope", "MicroManagerMicroscope", "Microscope", "ModelSpec", "ObjectiveSpec",
    "Output", "Position", "Protocol", "ReplayMicroscope", "ReturnToScreening", "Screening",
    "SetChannel", "SimulatedMicroscope", "StageLimits", "Stop", "Tracking", "Trigger",
    "VirtualSample", "ZStack", "check_phases", "load_protocol", "parse_protocol",
]
