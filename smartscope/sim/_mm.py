"""pymmcore-plus, imported without letting it change the host application's logging.

Importing pymmcore_plus sets the ROOT logger to DEBUG (its ``configure_logging``), which would
turn on every library's debug output in the CLI and in users' scripts. This module imports it
once and puts the root level back; the simulator imports pymmcore-plus names from here.
"""

from __future__ import annotations

import logging

_root_level = logging.getLogger().level
try:
    import pymmcore
    from pymmcore_plus.experimental.unicore import (
        ShutterDevice,
        SimpleCameraDevice,
        StageDevice,
        StateDevice,
        UniMMCore,
        XYStageDevice,
    )
finally:
    logging.getLogger().setLevel(_root_level)
    del _root_level

__all__ = [
    "ShutterDevice",
    "SimpleCameraDevice",
    "StageDevice",
    "StateDevice",
    "UniMMCore",
    "XYStageDevice",
    "pymmcore",
]
