"""Pixel -> stage conversion and the stage-limit check."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartscope.decide import Limits, check_target, image_centre_px, pixel_to_stage, stage_to_pixel
from smartscope.protocol import CameraOrientation


def test_centre_pixel_maps_to_stage_position():
    cy, cx = image_centre_px((1024, 1024))
    assert (cy, cx) == (511.5, 511.5)
    x, y = pixel_to_stage(cy, cx, shape=(1024, 1024), pixel_size_um=0.645,
                          stage_x_um=100.0, stage_y_um=-20.0)
    assert (x, y) == pytest.approx((100.0, -20.0))


def test_offset_scales_with_pixel_size_upright():
    x, y = pixel_to_stage(511.5 + 10, 511.5 + 100, shape=(1024, 1024), pixel_size_um=0.5,
                          stage_x_um=0.0, stage_y_um=0.0)
    assert (x, y) == pytest.approx((50.0, 5.0))


@pytest.mark.parametrize(
    "orient, expected",
    [
        (CameraOrientation(flip_x=True), (-50.0, 5.0)),
        (CameraOrientation(flip_y=True), (50.0, -5.0)),
        (CameraOrientation(rotation_deg=90), (-5.0, 50.0)),
        (CameraOrientation(rotation_deg=180), (-50.0, -5.0)),
        (CameraOrientation(rotation_deg=270), (5.0, -50.0)),
    ],
)
def test_orientation(orient, expected):
    x, y = pixel_to_stage(511.5 + 10, 511.5 + 100, shape=(1024, 1024), pixel_size_um=0.5,
                          stage_x_um=0.0, stage_y_um=0.0, orientation=orient)
    assert (x, y) == pytest.approx(expected)


@given(
    y=st.floats(0, 2047), x=st.floats(0, 2047), ps=st.floats(0.05, 2.0),
    sx=st.floats(-1e4, 1e4), sy=st.floats(-1e4, 1e4), fx=st.booleans(), fy=st.booleans(),
    rot=st.sampled_from([0, 90, 180, 270]),
)
def test_round_trip(y, x, ps, sx, sy, fx, fy, rot):
    o = CameraOrientation(flip_x=fx, flip_y=fy, rotation_deg=rot)
    kw = dict(shape=(2048, 2048), pixel_size_um=ps, stage_x_um=sx, stage_y_um=sy, orientation=o)
    X, Y = pixel_to_stage(y, x, **kw)
    y2, x2 = stage_to_pixel(X, Y, **kw)
    assert y2 == pytest.approx(y, abs=1e-6) and x2 == pytest.approx(x, abs=1e-6)


def test_check_target():
    lim = Limits(x_um=(-100, 100), y_um=(-50, 50), z_um=(0, 10))
    assert check_target(lim, 0, 0, 5) is None
    assert check_target(lim, 100, -50, 10) is None  # inclusive
    assert "x target" in check_target(lim, 100.5, 0, 5)
    assert "y target" in check_target(lim, 0, 51, 5)
    assert "z target" in check_target(lim, 0, 0, -0.1)
    assert check_target(lim, None, None, None) is None
    assert "finite" in check_target(Limits(), math.nan, 0, 0)
    assert "finite" in check_target(Limits(), 0, math.inf, 0)


def test_merge_prefers_protocol():
    merged = Limits.merge(Limits(x_um=(0, 1)), Limits(x_um=(-5, 5), z_um=(0, 100)))
    assert merged == Limits(x_um=(0, 1), y_um=None, z_um=(0, 100))
