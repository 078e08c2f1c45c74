"""Sim clocks: the time (seconds) at which the virtual sample is rendered.

Any object with a ``now_s() -> float`` method can serve; pass it to ``smartscope.sim.start``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What the simulator needs from a clock."""

    def now_s(self) -> float:
        """Current sim time in seconds (never decreases)."""
        ...


class ScaledClock:
    """Sim time = ``start_s`` + ``time_scale`` x real seconds elapsed since creation.

    Parameters
    ----------
    time_scale : float
        Sim seconds per real second (> 0).
    start_s : float
        Sim time at creation.
    monotonic : callable, optional
        Real-time source in seconds (default ``time.monotonic``); inject a fake one in tests.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        start_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale={time_scale}: give a value > 0")
        self.time_scale = float(time_scale)
        self._start_s = float(start_s)
        self._monotonic = monotonic
        self._t0 = monotonic()
        self._skip_s = 0.0
        self._lock = threading.Lock()

    def now_s(self) -> float:
        """Current sim time, seconds."""
        with self._lock:
            return self._start_s + self._skip_s + self.time_scale * (self._monotonic() - self._t0)

    def advance(self, dt_s: float) -> None:
        """Jump ``dt_s`` sim seconds ahead (>= 0), e.g. to skip to an interesting moment."""
        if dt_s < 0:
            raise ValueError(f"dt_s={dt_s}: a sim clock cannot go back; give dt_s >= 0")
        with self._lock:
            self._skip_s += float(dt_s)


class ManualClock:
    """A clock that only moves when told to: deterministic runs and tests.

    Parameters
    ----------
    start_s : float
        Sim time at creation.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._t = float(start_s)
        self._lock = threading.Lock()

    def now_s(self) -> float:
        """Current sim time, seconds."""
        with self._lock:
            return self._t

    def advance(self, dt_s: float) -> None:
        """Move ``dt_s`` sim seconds ahead (>= 0)."""
        if dt_s < 0:
            raise ValueError(f"dt_s={dt_s}: a sim clock cannot go back; give dt_s >= 0")
        with self._lock:
            self._t += float(dt_s)

    def set(self, t_s: float) -> None:
        """Set the sim time to ``t_s`` (not earlier than now)."""
        with self._lock:
            if t_s < self._t:
                raise ValueError(f"t_s={t_s} is before now ({self._t}): a sim clock cannot go back")
            self._t = float(t_s)
