"""The MMCore of the simulated microscope, and its registration with pycromanager.

pycromanager 1.0.2's Python engine (``acq_eng_py``) calls snake_case core methods, so the core
gets snake_case names (``snake_case_class``). ``register`` makes pycromanager's Python engine run
on it and ``unregister`` undoes that, so that a later ``start`` in the same process works; both go
through ``smartscope.acquire.engine``, the one module that touches pycromanager's non-public
parts (hence the pinned versions in ``[mm]``).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from smartscope.errors import MicroscopeError
from smartscope.sim._mm import UniMMCore, pymmcore

if TYPE_CHECKING:
    from pymmcore import PixelSizeConfigName

log = logging.getLogger(__name__)

#: Device labels, as in Micro-Manager's demo configuration.
CAMERA = "Camera"
XY_STAGE = "XY"
FOCUS = "Z"
OBJECTIVE = "Objective"
FILTER = "Filter"
SHUTTER = "Shutter"

#: Config groups.
OBJECTIVE_GROUP = "Objective"
CHANNEL_GROUP = "Channel"


class SimCore(UniMMCore):
    """A UniMMCore whose pixel size follows the objective turret.

    MMCore's pixel-size configurations are resolved in C++ from device properties, which it
    cannot read from Python devices; this class resolves them from the turret's label instead.

    Parameters
    ----------
    pixel_sizes_um : dict
        Objective label -> pixel size (um/px).
    """

    def __init__(self, pixel_sizes_um: dict[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sim_pixel_sizes = dict(pixel_sizes_um)

    def _sim_objective(self) -> str:
        try:
            return str(self.getProperty(OBJECTIVE, "Label"))
        except Exception:  # the turret is not loaded (yet / any more)
            return ""

    def getPixelSizeUm(self, cached: bool = False) -> float:  # noqa: N802 - MMCore name
        """Pixel size (um/px) of the objective in place; 0 without a turret (as MMCore)."""
        return float(self._sim_pixel_sizes.get(self._sim_objective(), 0.0))

    def getCurrentPixelSizeConfig(  # noqa: N802
        self, cached: bool = False
    ) -> PixelSizeConfigName:
        """Name of the pixel-size configuration of the objective in place (``Res10x``...)."""
        obj = self._sim_objective()
        return cast("PixelSizeConfigName", f"Res{obj}" if obj in self._sim_pixel_sizes else "")

    def getMagnificationFactor(self) -> float:  # noqa: N802
        """1: magnification is carried by the pixel-size configurations."""
        return 1.0


def _snake(name: str) -> str:
    s = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", s).lower()


_Core = TypeVar("_Core", bound=UniMMCore)


def snake_case_class(base: type[_Core]) -> type[_Core]:
    """A subclass of ``base`` where every CMMCore method also has its snake_case name.

    The names map to ``base``'s own (possibly overridden) methods, so Python devices and
    ``SimCore`` overrides are used; mmpycorex's own shim maps to ``pymmcore.CMMCore`` and
    would bypass them.
    """
    attrs: dict[str, Any] = {}
    for name in dir(pymmcore.CMMCore):
        if name.startswith("_"):
            continue
        attr = getattr(base, name, None)
        if callable(attr):
            attrs[_snake(name)] = attr
    return cast("type[_Core]", type(base.__name__ + "SnakeCase", (base,), attrs))


def new_core(pixel_sizes_um: dict[str, float]) -> SimCore:
    """A fresh core (no devices) with snake_case names, without a Micro-Manager install."""
    cls = snake_case_class(SimCore)
    mm_dir = tempfile.mkdtemp(prefix="smartscope-sim-")  # empty: no adapter search, no error log
    return cls(pixel_sizes_um, mm_path=mm_dir)


def register(core: SimCore) -> None:
    """Make ``pycromanager.Acquisition(...)`` run on ``core`` with the Python engine.

    Raises
    ------
    MicroscopeError
        If another Python-backend core is running in this process (a second simulator, or
        ``start_headless``): stop it first.
    """
    from smartscope.acquire import engine

    if engine.python_core_running():
        raise MicroscopeError(
            "another Micro-Manager core is already running with pycromanager's Python engine in "
            "this process: leave its `with smartscope.sim.start(...)` block (or call "
            "pycromanager.stop_headless()) before starting the simulator"
        )
    engine.attach_python_core(core)
    log.debug("simulated core registered with pycromanager's Python engine")


def unregister(core: UniMMCore) -> None:
    """Undo ``register``: shut the engine down, forget the core, unload its devices."""
    from smartscope.acquire import engine

    engine.detach_python_core(core)
    release(core)
    log.debug("simulated core unregistered")


def release(core: UniMMCore) -> None:
    """Unload the devices and detach the C++ event callback.

    A UniMMCore that held Python devices and is still referenced when the interpreter exits
    aborts it ("FATAL: exception not rethrown", exit code 134) unless its C++ callback is
    detached first; users often keep ``scope.core`` in a global, so detach it here.
    """
    try:
        core.unloadAllDevices()
        pymmcore.CMMCore.registerCallback(core, None)
    except Exception:  # cleanup must not mask the error that ended the run
        log.exception("releasing the simulated core failed")


@contextmanager
def serving(core: SimCore, setup: Callable[[], None], name: str) -> Iterator[None]:
    """Run ``setup`` (load the devices), ``register`` the core, and always undo it on exit.

    ``unregister`` if it was registered, else ``release`` (setup or registration failed), and
    log "<name> stopped".
    """
    registered = False
    try:
        setup()
        register(core)
        registered = True
        yield
    finally:
        if registered:
            unregister(core)
        else:
            release(core)
        log.info("%s stopped", name)
