"""pycromanager's non-public parts, in one place.

smartscope needs three things pycromanager 1.0.2 (with mmpycorex 0.3.16) offers no public API
for; everything else uses its public API (``Acquisition``, ``start_headless``, ``Core``).

1. Run its Python acquisition engine on a core smartscope built (the simulator's UniMMCore):
   ``start_headless(..., python_backend=True)`` only runs on a core it creates from a
   Micro-Manager install. ``attach_python_core`` puts our core where it puts its own
   (``mmpycorex.launcher._PYMMCORES`` and the ``Engine`` singleton) and gives the core the
   tagged-image methods that mmpycorex's core shim adds.
2. Undo that (``detach_python_core``), so a later start in the same process works.
3. Read the device error the Python engine aborted an acquisition with (``engine_failure``):
   the engine swallows it and ``await_completion`` would wait for ever.

These fit pycromanager==1.0.2 and mmpycorex==0.3.16, pinned in the ``[mm]`` extra; check them
when either version moves (``tests/sim/test_pycromanager.py`` runs them end to end).
"""

from __future__ import annotations

import types
from typing import Any


def python_core_running() -> bool:
    """True when a core already runs with pycromanager's Python engine in this process."""
    from mmpycorex import launcher

    return bool(launcher._PYMMCORES)


def attach_python_core(core: Any) -> None:
    """Make ``pycromanager.Acquisition(...)`` run on ``core`` with the Python engine."""
    from mmpycorex import launcher
    from pycromanager.acquisition.acq_eng_py.internal.engine import Engine

    stale = Engine.get_instance()
    if stale is not None:  # left behind by stop_headless(): its executors are shut down
        stale.shutdown()
        del Engine.singleton
    core.get_tagged_image = types.MethodType(launcher.get_tagged_image, core)
    core.pop_next_tagged_image = types.MethodType(launcher.pop_next_tagged_image, core)
    core.TaggedImage = launcher.TaggedImage
    launcher._PYMMCORES.append(core)
    Engine(core)


def detach_python_core(core: Any) -> None:
    """Undo ``attach_python_core``: shut the engine down if it runs on ``core``, forget it."""
    from mmpycorex import launcher
    from pycromanager.acquisition.acq_eng_py.internal.engine import Engine

    engine = Engine.get_instance()
    if engine is not None and engine.core is core:
        engine.shutdown()
        del Engine.singleton
    if core in launcher._PYMMCORES:
        launcher._PYMMCORES.remove(core)


def engine_failure(acq: Any) -> BaseException | None:
    """The device error pycromanager's Python engine aborted ``acq`` with, if any (read only)."""
    engine_acq = getattr(acq, "_acq", None)
    failure = getattr(engine_acq, "abort_exception_", None)
    return failure if isinstance(failure, BaseException) else None
