"""Python devices for pymmcore-plus's UniMMCore: camera, stages, turret, filters, shutter.

The devices only hold hardware state (positions, labels, exposure) and check limits and faults;
the camera asks a frame source (the simulated microscope) for each image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from smartscope.errors import StageLimitError
from smartscope.sim._mm import (
    ShutterDevice,
    SimpleCameraDevice,
    StageDevice,
    StateDevice,
    XYStageDevice,
)
from smartscope.sim.faults import Faults

#: (exposure_ms, (rows, cols)) -> (uint16 image, metadata)
FrameSource = Callable[[float, tuple[int, int]], tuple[np.ndarray, Mapping[str, str]]]


class SimCamera(SimpleCameraDevice):
    """A 16-bit camera whose images come from ``frame_source``.

    Parameters
    ----------
    frame_source : callable
        ``(exposure_ms, shape) -> (image, metadata)``.
    sensor_px : int
        Sensor side, pixels (square sensor).
    exposure_ms : float
        Exposure at start.
    faults : Faults
    real_exposure_time : bool
        Sleep for the exposure time on each snap, as a real camera takes that long.
    sleep : callable
        ``sleep(seconds)``, injectable for tests.
    """

    def __init__(self, frame_source: FrameSource, sensor_px: int, exposure_ms: float,
                 faults: Faults, real_exposure_time: bool = True,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self._source = frame_source
        self._px = int(sensor_px)
        self._exposure_ms = float(exposure_ms)
        self._faults = faults
        self._real_time = real_exposure_time
        self._sleep = sleep
        self.n_snaps = 0

    def get_exposure(self) -> float:
        return self._exposure_ms

    def set_exposure(self, exposure: float) -> None:
        if exposure <= 0:
            raise ValueError(f"Camera: exposure {exposure} ms: give an exposure > 0 ms")
        self._exposure_ms = float(exposure)

    def sensor_shape(self) -> tuple[int, int]:
        return self._faults.image_shape((self._px, self._px))

    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16)

    def snap(self, buffer: np.ndarray) -> Mapping:
        self._faults.check_snap()
        t0 = time.perf_counter()
        img, meta = self._source(self._exposure_ms, (buffer.shape[0], buffer.shape[1]))
        buffer[:] = img
        self._faults.image_done()
        self.n_snaps += 1
        if self._real_time:
            left = self._exposure_ms / 1000.0 - (time.perf_counter() - t0)
            if left > 0:
                self._sleep(left)
        return {**meta, "SimCamera-Snap": str(self.n_snaps)}


class SimXYStage(XYStageDevice):
    """XY stage with travel limits (um); a move outside them raises ``StageLimitError``."""

    def __init__(self, x_limits_um: Sequence[float], y_limits_um: Sequence[float],
                 faults: Faults) -> None:
        super().__init__()
        self._xlim = (float(x_limits_um[0]), float(x_limits_um[1]))
        self._ylim = (float(y_limits_um[0]), float(y_limits_um[1]))
        self._faults = faults
        self._xy = (0.0, 0.0)          # physical position
        self._origin = (0.0, 0.0)      # user origin (set_origin)

    @property
    def physical_um(self) -> tuple[float, float]:
        """Where the stage really is (um), independent of any user origin."""
        return self._xy

    def set_position_um(self, x: float, y: float) -> None:
        self._faults.check_xy()
        px, py = float(x) + self._origin[0], float(y) + self._origin[1]
        (x0, x1), (y0, y1) = self._xlim, self._ylim
        if not (x0 <= px <= x1 and y0 <= py <= y1):
            raise StageLimitError(
                f"XY: move to ({px:.1f}, {py:.1f}) um is outside the travel limits "
                f"x {self._xlim}, y {self._ylim} um: choose a position inside them "
                "(or widen SimConfig.x_limits_um / y_limits_um)"
            )
        self._xy = (px, py)

    def get_position_um(self) -> tuple[float, float]:
        return self._xy[0] - self._origin[0], self._xy[1] - self._origin[1]

    def set_origin_x(self) -> None:
        self._origin = (self._xy[0], self._origin[1])

    def set_origin_y(self) -> None:
        self._origin = (self._origin[0], self._xy[1])

    def home(self) -> None:
        self._faults.check_xy()
        self._xy = (0.0, 0.0)

    def stop(self) -> None:
        """Moves are instantaneous: nothing to stop."""


class SimZStage(StageDevice):
    """Focus drive with travel limits (um); a move outside them raises ``StageLimitError``."""

    def __init__(self, z_limits_um: Sequence[float], start_um: float, faults: Faults) -> None:
        super().__init__()
        self._lim = (float(z_limits_um[0]), float(z_limits_um[1]))
        self._faults = faults
        self._z = float(start_um)
        self._origin = 0.0

    @property
    def physical_um(self) -> float:
        """Where the focus drive really is (um)."""
        return self._z

    def set_position_um(self, val: float) -> None:
        self._faults.check_z()
        z = float(val) + self._origin
        if not self._lim[0] <= z <= self._lim[1]:
            raise StageLimitError(
                f"Z: move to {z:.2f} um is outside the travel limits {self._lim} um: choose a "
                "position inside them (or widen SimConfig.z_limits_um)"
            )
        self._z = z

    def get_position_um(self) -> float:
        return self._z - self._origin

    def set_origin(self) -> None:
        self._origin = self._z

    def home(self) -> None:
        self._faults.check_z()
        self._z = self._lim[0]

    def stop(self) -> None:
        """Moves are instantaneous: nothing to stop."""


class SimStateDevice(StateDevice):
    """A turret or filter wheel with labelled positions.

    Parameters
    ----------
    labels : sequence of str
        One label per position.
    start : int
        Position at start.
    check : callable, optional
        Called before each move; raises to refuse it, or returns False to report the move as
        done while the optics stay where they are (a silently stuck turret).
    """

    def __init__(self, labels: Sequence[str], start: int = 0,
                 check: Callable[[], bool] | None = None) -> None:
        super().__init__(dict(enumerate(labels)))
        self._labels = tuple(labels)
        self._state = int(start)
        self._physical = int(start)
        self._check = check

    @property
    def current_label(self) -> str:
        """Label of the position physically in the light path (what the camera sees)."""
        return self._labels[self._physical]

    def get_state(self) -> int:
        return self._state

    def set_state(self, position: int) -> None:
        moves = self._check() if self._check is not None else True
        self._state = int(position)
        if moves:
            self._physical = self._state


class SimShutter(ShutterDevice):
    """The light-source shutter."""

    def __init__(self) -> None:
        super().__init__()
        self._open = False

    def get_open(self) -> bool:
        return self._open

    def set_open(self, open: bool) -> None:  # noqa: A002 - name fixed by the base class
        self._open = bool(open)
