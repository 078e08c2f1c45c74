"""pycromanager's non-public parts, in one place.

smartscope needs three things pycromanager 1.0.2 (with mmpycorex 0.3.16) offers no public API
for; everything else uses its public API (``Acquisition``, ``start_headless``, ``Core``).

1. Run its Python acquisition engine on a core smartscope built (the simulator's UniMMCore):
   ``start_headless(..., python_backend=True)`` only runs on a core it creates from a
   Micro-Manager install. ``attach_python_core`` puts our core where it puts its own
   (``mmpycorex.launcher._PYMMCORES`` and the ``Engine`` singleton) and gives the core the
   tagged-image methods that mmpycorex's core shim adds.
2. Undo that (``detach_python_core``), so a later start in the same process works.
3. Read the device error the Python engine ended an acquisition's events with
   (``engine_failure``): the engine swallows it and ``await_completion`` would wait for ever.
   It records the error as the acquisition's abort reason only when an event fails inside a
   batch; the last event of a batch (every event, when the hook submits them one at a time)
   is run by the batch's closing step, whose error stays in the future that
   ``submit_event_iterator`` returns and nobody reads. ``watch_event_submissions`` keeps those
   futures, so that error is seen at once, with the device's own message, instead of after
   ``microscope.stall_timeout_s`` through the watchdog.

These fit pycromanager==1.0.2 and mmpycorex==0.3.16, pinned in the ``[mm]`` extra; check them
when either version moves (``tests/sim/test_pycromanager.py`` runs them end to end).
"""

from __future__ import annotations

import threading
import types
from typing import Any

_SUBMISSIONS = "_smartscope_submissions"


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


def watch_event_submissions(acq: Any) -> bool:
    """Keep the futures of ``acq``'s event submissions for ``engine_failure`` (call before the
    first ``acq.acquire``). False when this pycromanager has no such step (nothing changed)."""
    engine_acq = getattr(acq, "_acq", None)
    submit = getattr(engine_acq, "submit_event_iterator", None)
    if engine_acq is None or submit is None or hasattr(engine_acq, _SUBMISSIONS):
        return False
    futures: list[Any] = []
    lock = threading.Lock()

    def submit_and_keep(event_iterator: Any) -> Any:
        future = submit(event_iterator)
        with lock:  # forget the ones that ended well: a long run submits thousands
            futures[:] = [f for f in futures if not f.done() or _failed(f) is not None]
            futures.append(future)
        return future

    setattr(engine_acq, _SUBMISSIONS, (futures, lock))
    engine_acq.submit_event_iterator = submit_and_keep
    return True


def engine_failure(acq: Any) -> BaseException | None:
    """The device error pycromanager's Python engine ended ``acq``'s events with, if any: its
    abort reason, else the error of a kept submission (``watch_event_submissions``)."""
    engine_acq = getattr(acq, "_acq", None)
    failure = getattr(engine_acq, "abort_exception_", None)
    if isinstance(failure, BaseException):
        return failure
    futures, lock = getattr(engine_acq, _SUBMISSIONS, ((), None))
    if lock is None:
        return None
    with lock:
        kept = list(futures)
    for future in kept:
        failed = _failed(future) if future.done() else None
        if failed is not None:
            return failed
    return None


def _failed(future: Any) -> BaseException | None:
    if future.cancelled():
        return None
    error = future.exception()
    return error if isinstance(error, BaseException) else None
