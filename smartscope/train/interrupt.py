"""Ctrl-C and SIGTERM during training: stop after the current epoch and keep the best epoch so far,
as ``--max-minutes`` does, instead of throwing the run away; a second one abandons the run."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

log = logging.getLogger(__name__)


class EpochStop:
    """While training (main thread only; elsewhere it does nothing): the first Ctrl-C or SIGTERM
    sets :attr:`requested` (the signal's name) and the loop ends after the epoch it is in, keeping
    ``kept`` (the best epoch so far; a refit keeps the last); a second one raises
    ``KeyboardInterrupt`` (the run is abandoned and its staging folder removed). The previous
    handlers come back on exit."""

    def __init__(self, kept: str = "the best epoch so far") -> None:
        self.kept = kept
        self.requested: str | None = None
        self._old: list[tuple[int, object]] = []

    def __enter__(self) -> EpochStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old.append((sig, signal.signal(sig, self._first)))
        return self

    def _first(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signal.Signals(signum).name
        log.warning("%s: training stops after this epoch and keeps %s (once more to abandon "
                    "the run)", self.requested, self.kept)
        for sig, _ in self._old:
            signal.signal(sig, _abandon)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, old in self._old:
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old.clear()


def _abandon(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """While a training command runs (main thread only): SIGTERM outside the epochs (reading
    the data, export) abandons the run as a second Ctrl-C does, its staging folder removed,
    instead of killing the process and leaving the folder behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _abandon)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
