"""Failure and latency bookkeeping of ``SmartHook``: a failure inside the hook is logged with its
traceback, recorded, and handled by ``on_error``; an image over the latency budget is counted."""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Literal

from smartscope.acquire.datasets import Placement
from smartscope.decide import Decision, FrameRequest, Planner, Step

log = logging.getLogger("smartscope.acquire.hook")


class FaultHandling:
    """Mixin of ``SmartHook``: what happens when the hook fails or runs late."""

    planner: Planner
    on_error: Literal["continue", "stop"]
    latency_budget_ms: float | None
    _errors: int
    _over_budget: int
    _stop_requested: bool
    _lock: threading.Lock
    _pending: dict[tuple[Any, ...], tuple[FrameRequest, Placement]]
    _stored_only: dict[tuple[Any, ...], tuple[FrameRequest, Placement]]

    def _check_budget(self, index: int, req: FrameRequest, latency_ms: float) -> bool | None:
        """Whether the image went over the latency budget (None without one); logged if so."""
        budget = self.latency_budget_ms
        if budget is None:
            return None
        if latency_ms <= budget:
            return False
        self._over_budget += 1
        log.warning("image %d (%s, %s): the hook took %.0f ms, over its latency budget of %g ms "
                    "(%d image(s) over so far)", index, req.mode, req.objective, latency_ms,
                    budget, self._over_budget)
        return True

    def _error_record(self, e: BaseException, time_s: float, where: str) -> Decision:
        self._errors += 1
        log.error("hook failure in %s at t=%.2f s (on_error=%s): %s\n%s", where, time_s,
                  self.on_error, e, "".join(traceback.format_exception(e)))
        return Decision("error", time_s=time_s, where=where, error=f"{type(e).__name__}: {e}",
                        on_error=self.on_error)

    def _failed(self, e: BaseException, time_s: float, records: list[Decision],
                where: str) -> Step:
        records.append(self._error_record(e, time_s, where))
        if self.on_error == "stop" or self._stop_requested:
            return Step(done=True)
        try:
            with self._lock:
                # images of an abandoned group are saved where they belong, not decided on
                self._stored_only.update(self._pending)
                self._pending.clear()
            return self.planner.abandon(time_s, f"{type(e).__name__}: {e}")
        except Exception as e2:  # the planner cannot go on: end cleanly rather than hang
            records.append(self._error_record(e2, time_s, "recover"))
            return Step(done=True)
