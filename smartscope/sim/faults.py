"""Fault injection for the simulated microscope.

Faults act inside the devices, so the errors come out of the real MMCore calls (``snapImage``,
``setXYPosition``, ``setConfig``...) exactly where hardware errors would. Every injected error
is a ``MicroscopeError`` (``smartscope.errors``) whose message says it was injected.

Examples
--------
>>> with smartscope.sim.start(SimConfig()) as scope:          # doctest: +SKIP
...     scope.faults.camera_timeout(count=2)   # the next two snaps raise
...     scope.faults.xy_stage_refuses()       # every XY move raises until cleared
...     scope.faults.camera_hangs(seconds=10)  # the next snap blocks for 10 s, then delivers
...     scope.faults.clear()
"""

from __future__ import annotations

import threading

from smartscope.errors import MicroscopeError


class Faults:
    """Named faults to arm on a running simulated microscope (thread-safe).

    ``count`` arguments: how many operations fail before the fault clears itself; ``None``
    keeps it armed until ``clear()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._camera_timeouts: int | None = 0
        self._camera_hang_s = 0.0
        self._released = threading.Event()
        self._wrong_shape: tuple[int, int] | None = None
        self._wrong_shape_count: int | None = 0
        self._objective_stuck = False
        self._objective_silent = False
        self._xy_refuses = False
        self._z_refuses = False

    # -- arming -----------------------------------------------------------------------------

    def camera_timeout(self, count: int | None = 1) -> None:
        """The next ``count`` snaps raise a camera timeout (``None``: every snap)."""
        with self._lock:
            self._camera_timeouts = count

    def camera_hangs(self, seconds: float = 3600.0) -> None:
        """The next snap blocks for ``seconds`` (or until ``clear()``), then delivers: a
        camera or driver that stops answering without an error."""
        if not seconds > 0:
            raise ValueError(f"seconds={seconds}: give a time > 0")
        with self._lock:
            self._camera_hang_s = float(seconds)
            self._released.clear()

    def wrong_image_size(self, shape: tuple[int, int] = (512, 512), count: int | None = 1) -> None:
        """The next ``count`` images have ``shape`` (rows, cols) instead of the sensor's."""
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape={shape}: give (rows, cols), both >= 1")
        with self._lock:
            self._wrong_shape = (int(shape[0]), int(shape[1]))
            self._wrong_shape_count = count

    def objective_stuck(self, stuck: bool = True, silent: bool = False) -> None:
        """The turret stops moving: objective changes raise, or (``silent``) are reported as
        done while the old objective stays in the light path (images keep the old
        magnification while ``getPixelSizeUm`` follows the reported one)."""
        with self._lock:
            self._objective_stuck = stuck
            self._objective_silent = silent

    def xy_stage_refuses(self, refuses: bool = True) -> None:
        """Every XY stage move raises until cleared."""
        with self._lock:
            self._xy_refuses = refuses

    def z_stage_refuses(self, refuses: bool = True) -> None:
        """Every focus (Z) move raises until cleared."""
        with self._lock:
            self._z_refuses = refuses

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._camera_timeouts = 0
            self._camera_hang_s = 0.0
            self._released.set()
            self._wrong_shape, self._wrong_shape_count = None, 0
            self._objective_stuck = self._objective_silent = False
            self._xy_refuses = self._z_refuses = False

    def active(self) -> list[str]:
        """Names of the faults armed now."""
        with self._lock:
            names = []
            if self._camera_timeouts is None or self._camera_timeouts > 0:
                names.append("camera_timeout")
            if self._camera_hang_s > 0:
                names.append("camera_hangs")
            if self._wrong_shape is not None:
                names.append("wrong_image_size")
            if self._objective_stuck:
                names.append("objective_stuck")
            if self._xy_refuses:
                names.append("xy_stage_refuses")
            if self._z_refuses:
                names.append("z_stage_refuses")
            return names

    # -- used by the devices ----------------------------------------------------------------

    def check_snap(self) -> None:
        """Block if a hang is armed (once); raise if a camera timeout is armed (and count it)."""
        with self._lock:
            hang_s, self._camera_hang_s = self._camera_hang_s, 0.0
        if hang_s > 0:
            self._released.wait(hang_s)
        with self._lock:
            n = self._camera_timeouts
            if n is None or n > 0:
                if n is not None:
                    self._camera_timeouts = n - 1
                raise MicroscopeError(
                    "Camera: timed out waiting for the image (fault injected with "
                    "faults.camera_timeout; call faults.clear() to stop it)"
                )

    def image_shape(self, normal: tuple[int, int]) -> tuple[int, int]:
        """The shape the camera reports now: ``normal`` unless a wrong size is armed."""
        with self._lock:
            return self._wrong_shape if self._wrong_shape is not None else normal

    def image_done(self) -> None:
        """Count one image against ``wrong_image_size``."""
        with self._lock:
            if self._wrong_shape is None or self._wrong_shape_count is None:
                return
            self._wrong_shape_count -= 1
            if self._wrong_shape_count <= 0:
                self._wrong_shape, self._wrong_shape_count = None, 0

    def check_objective(self) -> bool:
        """Raise if the turret is stuck; False when it silently stays where it is."""
        with self._lock:
            if not self._objective_stuck:
                return True
            if self._objective_silent:
                return False
        raise MicroscopeError(
            "Objective: turret did not reach the requested position (fault injected with "
            "faults.objective_stuck; call faults.clear() to free it)"
        )

    def check_xy(self) -> None:
        """Raise if the XY stage refuses moves."""
        with self._lock:
            refuses = self._xy_refuses
        if refuses:
            raise MicroscopeError(
                "XY: stage refused to move (fault injected with faults.xy_stage_refuses; "
                "call faults.clear() to release it)"
            )

    def check_z(self) -> None:
        """Raise if the focus drive refuses moves."""
        with self._lock:
            refuses = self._z_refuses
        if refuses:
            raise MicroscopeError(
                "Z: focus drive refused to move (fault injected with faults.z_stage_refuses; "
                "call faults.clear() to release it)"
            )
