"""``smartscope calibrate``: measure how image pixels map onto stage micrometres.

The stage moves by known steps in x and in y; the image shift of each step is measured by phase
correlation against a reference image. The two shifts give the 2 x 2 pixel -> stage matrix, from
which come the pixel size, the flips and the rotation (the nearest of the protocol's
``camera`` orientations, and the residual angle). The stage is put back where it was.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartscope.acquire import corecalls
from smartscope.acquire.calibration import ObjectiveCalibration, calibration_of
from smartscope.decide import pixel_to_stage
from smartscope.errors import MicroscopeError, StageLimitError
from smartscope.protocol import CameraOrientation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """What ``measure`` found for one objective.

    Attributes
    ----------
    objective : str
    matrix_um_per_px : tuple
        (a, b, d, e): a pixel offset (dx, dy) from the image centre is the stage offset
        (a dx + b dy, d dx + e dy), um (the translation-free part of Micro-Manager's affine).
    pixel_size_um : float
        sqrt(|det|) of the matrix.
    orientation : CameraOrientation
        The nearest protocol orientation (flips, then a rotation by a multiple of 90 degrees).
    residual_deg : float
        Rotation left after that orientation (camera not square to the stage), degrees.
    fit_error : float
        Relative difference between the matrix and the orientation times the pixel size.
    shifts_px : tuple
        Measured image shift (dx, dy) of the x step and of the y step, px.
    micromanager : ObjectiveCalibration
        Micro-Manager's own calibration of the objective, to compare.
    """

    objective: str
    step_um: float
    matrix_um_per_px: tuple[float, float, float, float]
    pixel_size_um: float
    orientation: CameraOrientation
    residual_deg: float
    fit_error: float
    shifts_px: tuple[tuple[float, float], tuple[float, float]]
    micromanager: ObjectiveCalibration

    def report(self) -> list[str]:
        """Human-readable lines."""
        a, b, d, e = self.matrix_um_per_px
        mm = self.micromanager
        o = self.orientation
        lines = [
            f"objective {self.objective}: stage steps of {self.step_um:g} um moved the image by "
            f"({self.shifts_px[0][0]:+.2f}, {self.shifts_px[0][1]:+.2f}) px for +x and "
            f"({self.shifts_px[1][0]:+.2f}, {self.shifts_px[1][1]:+.2f}) px for +y",
            f"pixel -> stage matrix [[{a:+.4f}, {b:+.4f}], [{d:+.4f}, {e:+.4f}]] um/px",
            f"pixel size {self.pixel_size_um:.4f} um/px; orientation flip_x={o.flip_x}, "
            f"flip_y={o.flip_y}, rotation_deg={o.rotation_deg} (residual "
            f"{self.residual_deg:+.2f} deg, fit error {self.fit_error:.1%})",
        ]
        if mm.pixel_size_um is None:
            lines.append(f"Micro-Manager: no pixel-size calibration for {self.objective}")
        else:
            diff = (self.pixel_size_um - mm.pixel_size_um) / mm.pixel_size_um
            lines.append(f"Micro-Manager ({mm.config}): {mm.pixel_size_um:g} um/px, measured "
                         f"differs by {diff:+.1%}; "
                         + (f"its affine {[round(v, 5) for v in mm.affine]}" if mm.affine
                            else "no affine calibrated (the protocol's orientation is used)"))
        return lines


def _matrix(o: CameraOrientation) -> np.ndarray:
    cols = [pixel_to_stage(0.5 + dy, 0.5 + dx, shape=(2, 2), pixel_size_um=1.0, stage_x_um=0.0,
                           stage_y_um=0.0, orientation=o) for dx, dy in ((1, 0), (0, 1))]
    return np.array([[cols[0][0], cols[1][0]], [cols[0][1], cols[1][1]]])


def nearest_orientation(unit: np.ndarray) -> tuple[CameraOrientation, float]:
    """The protocol orientation closest to a 2 x 2 matrix of unit scale, and the distance."""
    best: tuple[float, int, CameraOrientation] | None = None
    for fx, fy, rot in itertools.product((False, True), (False, True), (0, 90, 180, 270)):
        o = CameraOrientation(flip_x=fx, flip_y=fy, rotation_deg=rot)  # type: ignore[arg-type]
        err = float(np.linalg.norm(_matrix(o) - unit)) / 2.0
        key = (round(err, 6), int(fx) + int(fy) + int(rot != 0))
        if best is None or key < (round(best[0], 6), best[1]):
            best = (err, key[1], o)
    assert best is not None
    return best[2], best[0]


def _shift(reference: np.ndarray, moved: np.ndarray) -> tuple[float, float]:
    """How far the image content moved from ``reference`` to ``moved``, (dx, dy) px."""
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(reference.astype(np.float32), moved.astype(np.float32),
                                          upsample_factor=20, normalization=None)
    return -float(shift[1]), -float(shift[0])


def _snap(core: Any) -> np.ndarray:
    corecalls.call(core, "snapImage")
    return np.asarray(corecalls.call(core, "getImage"))


MAX_STEP_FRACTION = 0.25
"""Largest step as a fraction of the field: phase correlation wraps beyond half the field, and
little of the image overlaps well before that."""


def _check_step(core: Any, step_um: float, x0: float, y0: float, mm: ObjectiveCalibration,
                limits: tuple[tuple[float, float] | None, tuple[float, float] | None]) -> None:
    """Refuse a step that leaves the stage limits or is too large for the field (when
    Micro-Manager knows the pixel size), before anything moves."""
    for axis, pos, lim in (("x", x0, limits[0]), ("y", y0, limits[1])):
        if lim is not None and not lim[0] <= pos + step_um <= lim[1]:
            raise StageLimitError(
                f"--step-um {step_um:g}: the stage would go to {axis} = {pos + step_um:g} um, "
                f"outside microscope.stage_limits.{axis}_um [{lim[0]:g}, {lim[1]:g}]; use a "
                f"smaller --step-um or start further from the limit")
    if mm.pixel_size_um:
        side_px = min(int(corecalls.call(core, "getImageWidth")),
                      int(corecalls.call(core, "getImageHeight")))
        most_um = MAX_STEP_FRACTION * side_px * mm.pixel_size_um
        if step_um > most_um:
            raise MicroscopeError(
                f"--step-um {step_um:g} is {step_um / mm.pixel_size_um:.0f} px at "
                f"{mm.pixel_size_um:g} um/px ({mm.config}), over a quarter of the {side_px} px "
                f"field: the shift cannot be measured; use --step-um {most_um:.3g} or less")


def measure(core: Any, *, objective_group: str, objective: str, step_um: float,
            limits: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None),
            ) -> Calibration:
    """Move the stage by ``step_um`` in x then in y, measure the image shifts, derive the
    pixel -> stage matrix. Switches to ``objective``; the stage ends where it started.

    Parameters
    ----------
    limits : ((x_lo, x_hi) or None, (y_lo, y_hi) or None)
        Safe stage travel, um (the protocol's ``stage_limits``); None: unchecked.

    Raises
    ------
    StageLimitError
        If a step would leave ``limits`` (nothing moves).
    MicroscopeError
        If the step exceeds a quarter of the field at Micro-Manager's pixel size (nothing
        moves), or the image does not move with the stage (no structure in view).
    """
    if not step_um > 0:
        raise MicroscopeError(f"--step-um {step_um:g}: use a positive step, e.g. 20")
    corecalls.call(core, "setConfig", objective_group, objective)
    corecalls.call(core, "waitForSystem")
    x0, y0 = float(corecalls.call(core, "getXPosition")), float(
        corecalls.call(core, "getYPosition"))
    _check_step(core, step_um, x0, y0, calibration_of(core, objective_group, objective), limits)

    def at(x: float, y: float) -> np.ndarray:
        corecalls.call(core, "setXYPosition", x, y)
        corecalls.call(core, "waitForSystem")
        return _snap(core)

    try:
        ref = at(x0, y0)
        u = _shift(ref, at(x0 + step_um, y0))
        v = _shift(ref, at(x0, y0 + step_um))
    finally:
        corecalls.call(core, "setXYPosition", x0, y0)
        corecalls.call(core, "waitForSystem")
    return from_shifts(u, v, step_um, objective=objective,
                       micromanager=calibration_of(core, objective_group, objective))


def from_shifts(u: tuple[float, float], v: tuple[float, float], step_um: float, *,
                objective: str, micromanager: ObjectiveCalibration) -> Calibration:
    """The calibration from the image shifts (dx, dy) px of a +x step ``u`` and a +y step ``v``
    of ``step_um`` each.

    Raises
    ------
    MicroscopeError
        If a shift is below half a pixel (the image did not follow the stage).
    """
    if min(math.hypot(*u), math.hypot(*v)) < 0.5:
        raise MicroscopeError(
            f"the image did not move when the stage moved {step_um:g} um ({u}, {v} px): put a "
            "sample with structure (beads, cells) in focus, or use a larger --step-um"
        )
    shifts = np.array([[u[0], v[0]], [u[1], v[1]]])  # columns: image shift per stage step
    # content moves opposite to the stage: shift = -M^-1 (step), so M = -(step) shifts^-1
    m = -step_um * np.linalg.inv(shifts)
    ps = math.sqrt(abs(float(np.linalg.det(m))))
    orientation, err = nearest_orientation(m / ps)
    residual = m / ps @ np.linalg.inv(_matrix(orientation))
    residual_deg = math.degrees(math.atan2(residual[1, 0] - residual[0, 1],
                                           residual[0, 0] + residual[1, 1]))
    return Calibration(
        objective=objective, step_um=step_um,
        matrix_um_per_px=(float(m[0, 0]), float(m[0, 1]), float(m[1, 0]), float(m[1, 1])),
        pixel_size_um=ps, orientation=orientation, residual_deg=residual_deg, fit_error=err,
        shifts_px=(u, v), micromanager=micromanager,
    )
