"""Micro-Manager core calls that work on every core we drive: a pymmcore(-plus) core
(camelCase), pycromanager's snake_case wrapper, and the Java bridge (snake_case only)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from smartscope.errors import ProtocolError


class PresetProperties(Protocol):
    """What the hook needs to send a preset in an event: its device property settings."""

    def __call__(self, group: str, preset: str) -> Sequence[tuple[str, str, str]]:
        """(device, property, value) of every setting of ``preset`` in config group ``group``."""
        ...


class PixelSizeReader(Protocol):
    """The microscope's current pixel-size calibration (``getPixelSizeUm``)."""

    def __call__(self) -> float:
        """Pixel size of the objective in place, um/px."""
        ...


def snake(name: str) -> str:
    """The snake_case name pycromanager gives a camelCase core method.

    The Java bridge (pyjavaz) and the Python backend's core (mmpycorex) both convert in two
    steps, so ``getXPosition`` is ``get_x_position`` (a one-step conversion gives
    ``get_xposition``, which the bridge does not know).
    """
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def call(core: Any, name: str, *args: Any) -> Any:
    """Call a core method by its camelCase name, falling back to its snake_case name."""
    fn = getattr(core, name, None)
    if fn is None:
        fn = getattr(core, snake(name))
    return fn(*args)


def strings(vector: Any) -> list[str]:
    """A string vector from any core (pymmcore tuple, bridge StrVector) as a list."""
    if hasattr(vector, "size") and hasattr(vector, "get"):
        return [str(vector.get(i)) for i in range(vector.size())]
    return [str(v) for v in vector]


def presets(core: Any, group: str) -> list[str]:
    """Preset names of a config group ([] when the group does not exist)."""
    if group not in strings(call(core, "getAvailableConfigGroups")):
        return []
    return strings(call(core, "getAvailableConfigs", group))


def preset_properties(core: Any, group: str, preset: str) -> list[tuple[str, str, str]]:
    """The (device, property, value) settings of a preset."""
    return settings(call(core, "getConfigData", group, preset))


def settings(config: Any) -> list[tuple[str, str, str]]:
    """The (device, property, value) settings of a core ``Configuration`` (a preset's or a
    pixel-size configuration's)."""
    out = []
    size = config.size() if hasattr(config, "size") else None
    if size is None:  # pymmcore-plus Configuration iterates as tuples
        return [(str(d), str(p), str(v)) for d, p, v in config]
    for i in range(size):
        s = call(config, "getSetting", i)
        out.append((str(call(s, "getDeviceLabel")), str(call(s, "getPropertyName")),
                    str(call(s, "getPropertyValue"))))
    return out


def check_preset(core: Any, group: str, preset: str, field: str, source: str) -> None:
    """Raise a ProtocolError naming ``field`` when ``preset`` is not in ``group`` on this core."""
    available = presets(core, group)
    if not available:
        groups = ", ".join(strings(call(core, "getAvailableConfigGroups")))
        raise ProtocolError(
            f"{source}: field '{field}': the microscope has no config group '{group}' "
            f"(it has: {groups}); set microscope.objective_group / channel_group"
        )
    if preset not in available:
        raise ProtocolError(
            f"{source}: field '{field}': value '{preset}' is not a preset of the '{group}' group "
            f"(presets: {', '.join(available)}); use one of them"
        )
