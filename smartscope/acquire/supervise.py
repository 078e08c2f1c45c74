"""Keeping a running acquisition answerable: waiting for it in short steps so Ctrl-C reaches
the main thread, ending it on a device failure the engine reports or on a frame the microscope
never delivers (``Watchdog``), and turning Ctrl-C / SIGTERM into one clean ending
(``InterruptGuard``). Used by ``smartscope.acquire.run.Run``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from smartscope.acquire.engine import engine_failure

log = logging.getLogger(__name__)


def await_acquisition(acq: Any, watchdog: Watchdog | None = None) -> None:
    """``await_completion`` in short waits, so Ctrl-C reaches the main thread promptly; a device
    failure (reported by the engine, or a frame stuck past the watchdog's timeout) raises
    ``DeviceFailure`` after ending the acquisition."""
    done = threading.Event()
    error: list[BaseException] = []

    def wait() -> None:
        try:
            acq.await_completion()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            error.append(e)
        finally:
            done.set()

    threading.Thread(target=wait, name="smartscope-await", daemon=True).start()
    while not done.wait(0.2):
        failure = engine_failure(acq)
        why = _failure_message(failure, watchdog) if failure is not None else None
        if why is None and watchdog is not None:
            why = watchdog.stalled()
        if why is not None:
            # pycromanager's Python engine swallows a device error (or aborts on it) while its
            # event thread keeps waiting for events, so await_completion would never return:
            # end the acquisition here (the data set is closed as on Ctrl-C)
            acq.abort()
            acq.mark_finished()
            done.wait(30.0)
            raise DeviceFailure(why) from failure
    if error:
        failure = engine_failure(acq) or error[0]
        raise DeviceFailure(_failure_message(failure, watchdog)) from failure


class DeviceFailure(Exception):
    """A device error ended the acquisition (the message is the device's)."""


class Watchdog:
    """pycromanager ``notification_callback_fn`` that notices a frame the microscope never
    delivers: a hardware or camera step of an event started and its image did not follow within
    ``timeout_s``.

    Waiting for an event's start time is not a stall (no notification is posted then).

    The engine's notifications and the images reach the watchdog from two different threads
    (the notification dispatcher and the image processor), each running behind the engine by
    its own amount: the image of frame N can reach the hook after frame N+1's camera step was
    announced. So each event is followed by its axes (unique over a run): an image clears its
    own event and every event announced before it (the engine runs events in order, and an
    event without an image, such as a stage move, has finished when a later image exists), never
    a later one. An event announced after its image already arrived (the notification came
    late) is not waited for. A hardware sequence clears on any image, since its images carry the
    axes of their own sub-events.
    """

    _BUSY = ("pre_hardware", "pre_z_drive", "post_hardware", "pre_snap", "post_snap",
             "pre_sequence_started")

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        # axes key -> [first busy time, last step, axes, cleared by any image], in announcement
        # order
        self._pending: dict[tuple[Any, ...], list[Any]] = {}
        self._delivered: set[tuple[Any, ...]] = set()

    def __call__(self, notification: Any) -> None:
        milestone = str(getattr(notification, "milestone", ""))
        payload = getattr(notification, "payload", None)
        with self._lock:
            if milestone in ("acq_events_finished", "data_sink_finished"):
                self._pending.clear()
            elif milestone == "image_saved":
                self._deliver(payload)
            elif milestone in self._BUSY:
                key = _key(payload)
                if key is not None and key in self._delivered:
                    return  # announced after its image arrived: nothing to wait for
                entry = self._pending.setdefault(key if key is not None else _UNKNOWN,
                                                 [self._clock(), milestone, payload, False])
                entry[1] = milestone
                # a sequence's images, and any image after a step without axes, clear it
                entry[3] = entry[3] or key is None or milestone == "pre_sequence_started"

    def arrived(self, axes: Any = None) -> None:
        """An image reached the hook (``axes``: its metadata's ``Axes``; None clears every
        waiting event): the microscope delivered, whether or not pycromanager saves it."""
        with self._lock:
            self._deliver(axes)

    def _deliver(self, axes: Any) -> None:
        key = _key(axes)
        if key is None:
            self._pending.clear()
            return
        self._delivered.add(key)
        keys = list(self._pending)
        if key in self._pending:
            upto = keys.index(key)
        else:  # an image of a hardware sequence, or one whose event was already cleared
            anyimage = [i for i, k in enumerate(keys) if self._pending[k][3]]
            if not anyimage:
                return
            upto = anyimage[0]
        for k in keys[:upto + 1]:
            del self._pending[k]

    def stalled(self) -> str | None:
        """Why the acquisition is stuck, or None."""
        with self._lock:
            if not self._pending:
                return None
            since, step, axes, _ = next(iter(self._pending.values()))
            if self._clock() - since < self.timeout_s:
                return None
            return (f"{_what_failed(step)} for the frame {axes} within {self.timeout_s:g} s "
                    f"(last step: {step}); pycromanager's log above names the device error")

    def explain(self, detail: str) -> str:
        """``detail`` (pycromanager's own words for a failed event, which drop the device's)
        with the step and frame the engine was at."""
        with self._lock:
            if not self._pending:
                return f"{detail}; pycromanager's log above names the device error"
            _, step, axes, _ = next(iter(self._pending.values()))
        return (f"{_what_failed(step)} for the frame {axes} (pycromanager: {detail}; its log "
                "above names the device error)")


def _what_failed(step: str) -> str:
    return ("the camera did not deliver the image" if "snap" in step or "sequence" in step else
            "a device (objective, channel, stage or focus) did not reach its position")


def _failure_message(failure: BaseException, watchdog: Watchdog | None) -> str:
    """The device's own message; when pycromanager replaced it by its own ("Changing channels
    unsuccessful": its retry loop drops the device error), the step and frame beside it."""
    why = _root_message(failure)
    if watchdog is not None and type(_root(failure)).__name__ == "HardwareControlException":
        return watchdog.explain(why)
    return why


_UNKNOWN: tuple[Any, ...] = ("(no axes)",)


def _key(axes: Any) -> tuple[Any, ...] | None:
    """Hashable identity of an event's or image's axes (None when there are none)."""
    if isinstance(axes, str):
        try:
            axes = json.loads(axes)
        except ValueError:
            return None
    if not isinstance(axes, dict) or not axes:
        return None
    return tuple(sorted((str(k), str(v)) for k, v in axes.items()))


def _root(e: BaseException) -> BaseException:
    """The innermost cause: the device error behind the engine's wrapper."""
    seen: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen[-1]


def _root_message(e: BaseException) -> str:
    """The innermost cause's message: the device error behind the engine's wrapper."""
    root = _root(e)
    return str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__


def await_quietly(acq: Any) -> None:
    try:
        acq.await_completion()
    except AttributeError:
        # the waiting thread of ``await_acquisition`` completed it first: pycromanager then drops
        # its engine object and a second await_completion fails on it (no traceback for Ctrl-C)
        log.debug("acquisition already completed by the waiting thread", exc_info=True)
    except Exception:
        log.exception("while closing the aborted acquisition")


class InterruptGuard:
    """Ctrl-C and SIGTERM while a run is recorded (main thread only): the first raises
    KeyboardInterrupt, so the acquisition ends and keeps what it acquired; every later one only
    logs, so a second Ctrl-C cannot abandon the data set or leave run.json unwritten. The
    previous handlers come back when the run's last file is written."""

    def __enter__(self) -> None:
        self._old: list[tuple[int, Any]] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old.append((sig, signal.signal(sig, self._first)))

    def _first(self, signum: int, frame: object) -> None:
        for sig, _ in self._old:
            signal.signal(sig, _closing_please_wait)
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old:
            signal.signal(sig, old)


def _closing_please_wait(signum: int, frame: object) -> None:
    log.warning("still closing the run after the interrupt (data set, run.json, report); the "
                "images are kept (SIGKILL would leave the data set unclosed: then run "
                "`smartscope repair` on the run folder)")
