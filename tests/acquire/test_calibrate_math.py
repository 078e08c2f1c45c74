"""``smartscope calibrate``'s arithmetic: stage steps and image shifts -> matrix, pixel size,
the protocol orientation that reproduces it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from smartscope.acquire import calibrate
from smartscope.acquire.calibration import ObjectiveCalibration
from smartscope.decide import stage_to_pixel
from smartscope.errors import MicroscopeError
from smartscope.protocol import CameraOrientation

NO_MM = ObjectiveCalibration("10x", None, None, None)


@pytest.mark.parametrize(("fx", "fy", "rot"), list(itertools.product(
    (False, True), (False, True), (0, 90, 180, 270))))
def test_every_orientation_is_recovered_from_the_shifts_it_causes(fx, fy, rot):
    o = CameraOrientation(flip_x=fx, flip_y=fy, rotation_deg=rot)
    ps, step = 0.65, 20.0
    centre = (255.5, 255.5)

    def shift(sx: float, sy: float) -> tuple[float, float]:
        # the stage moves by (sx, sy): a sample point at the old centre now appears here
        y, x = stage_to_pixel(0.0, 0.0, shape=(512, 512), pixel_size_um=ps, stage_x_um=sx,
                              stage_y_um=sy, orientation=o)
        return x - centre[1], y - centre[0]

    cal = calibrate.from_shifts(shift(step, 0), shift(0, step), step, objective="10x",
                                micromanager=NO_MM)
    assert cal.pixel_size_um == pytest.approx(ps)
    assert cal.fit_error == pytest.approx(0, abs=1e-9) and cal.residual_deg == pytest.approx(0)
    got = calibrate._matrix(cal.orientation)
    assert np.allclose(got, calibrate._matrix(o))  # the same mapping (flip x+y = rotate 180)


def test_a_slightly_rotated_camera_reports_the_residual_angle():
    a = math.radians(3.0)
    m = 0.5 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shifts = -10.0 * np.linalg.inv(m)
    cal = calibrate.from_shifts(tuple(shifts[:, 0]), tuple(shifts[:, 1]), 10.0,
                                objective="10x", micromanager=NO_MM)
    assert cal.orientation.rotation_deg == 0 and cal.residual_deg == pytest.approx(3.0)
    assert cal.pixel_size_um == pytest.approx(0.5)


def test_an_image_that_does_not_move_is_an_error():
    with pytest.raises(MicroscopeError, match="did not move"):
        calibrate.from_shifts((0.1, 0.0), (0.0, 0.1), 20.0, objective="10x", micromanager=NO_MM)
