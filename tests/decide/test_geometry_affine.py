"""Pixel -> stage through Micro-Manager's calibrated affine, and z kept near the start focus."""

from __future__ import annotations

import pytest
import yaml

from smartscope.decide import Limits, pixel_to_stage, stage_to_pixel
from smartscope.errors import ProtocolError
from smartscope.protocol import CameraOrientation, parse_protocol

SHAPE = (512, 512)


@pytest.mark.parametrize("affine", [(-0.5, 0.0, 0.0, 0.5), (0.0, -0.25, 0.25, 0.0),
                                    (0.3, 0.02, -0.01, 0.31)])
def test_affine_round_trip_and_direction(affine):
    x, y = pixel_to_stage(300.0, 100.0, shape=SHAPE, pixel_size_um=9.9, stage_x_um=10.0,
                          stage_y_um=-20.0, affine=affine)
    a, b, d, e = affine
    dx, dy = 100.0 - 255.5, 300.0 - 255.5
    assert (x, y) == pytest.approx((10.0 + a * dx + b * dy, -20.0 + d * dx + e * dy))
    back = stage_to_pixel(x, y, shape=SHAPE, pixel_size_um=9.9, stage_x_um=10.0,
                          stage_y_um=-20.0, affine=affine)
    assert back == pytest.approx((300.0, 100.0))


def test_flip_x_affine_matches_the_orientation():
    """A camera flipped in x: MM's affine (-ps, 0, 0, ps) and the protocol's flip_x agree."""
    by_affine = pixel_to_stage(10.0, 400.0, shape=SHAPE, pixel_size_um=0.5, stage_x_um=0,
                               stage_y_um=0, affine=(-0.5, 0.0, 0.0, 0.5))
    by_orientation = pixel_to_stage(10.0, 400.0, shape=SHAPE, pixel_size_um=0.5, stage_x_um=0,
                                    stage_y_um=0, orientation=CameraOrientation(flip_x=True))
    assert by_affine == pytest.approx(by_orientation)


def test_near_focus_narrows_z_only():
    lim = Limits(x_um=(-1, 1), y_um=(-2, 2), z_um=(-50, 3000)).near_focus(100.0, 120.0, 100.0)
    assert lim == Limits(x_um=(-1, 1), y_um=(-2, 2), z_um=(0.0, 220.0))
    assert Limits().near_focus(5.0, 5.0, 10.0).z_um == (-5.0, 15.0)


def _data(repo_root, **microscope):
    data = yaml.safe_load((repo_root / "acquisitions" / "mitosis_zoom.yaml").read_text())
    data["microscope"] = microscope
    return data


@pytest.mark.parametrize("kind", [{"type": "micromanager"},
                                  {"type": "headless", "mm_dir": ".", "config_file": "x.cfg"}])
def test_real_microscope_needs_limits_on_every_axis(repo_root, kind):
    with pytest.raises(ProtocolError, match=r"microscope'.*stage limits.*missing: z_um"):
        parse_protocol(_data(repo_root, **kind, stage_limits={"x_um": [-1, 1],
                                                              "y_um": [-1, 1]}), "p.yaml")
    ok = _data(repo_root, **kind, stage_limits={"x_um": [-1, 1], "y_um": [-1, 1],
                                                "z_um": [-1, 1]})
    assert parse_protocol(ok, "p.yaml").microscope.stage_limits.z_um == (-1, 1)


def test_parfocal_offset_and_stack_range_have_upper_bounds(repo_root):
    data = _data(repo_root, type="simulated", objectives={"60x": {"parfocal_z_offset_um": 300}})
    with pytest.raises(ProtocolError, match=r"objectives.60x.parfocal_z_offset_um.*300"):
        parse_protocol(data, "p.yaml")
    data = _data(repo_root, type="simulated")
    data["triggers"][0]["actions"][3] = {"type": "z_stack", "range_um": 400, "step_um": 2}
    with pytest.raises(ProtocolError, match=r"range_um.*400"):
        parse_protocol(data, "p.yaml")


def test_detection_pixel_size_is_the_screening_objectives_only(repo_root):
    data = _data(repo_root, type="simulated", objectives={"60x": {"pixel_size_um": 0.11}})
    data["detection"]["pixel_size_um"] = 0.65
    proto = parse_protocol(data, "p.yaml")
    assert proto.pixel_sizes_um() == {"10x": 0.65, "60x": 0.11}
    data["microscope"]["objectives"]["10x"] = {"pixel_size_um": 0.6}
    with pytest.raises(ProtocolError, match="disagree"):
        parse_protocol(data, "p.yaml")


def test_hook_uses_each_objectives_pixel_size(repo_root):
    from smartscope.acquire.hook import SmartHook

    data = _data(repo_root, type="simulated")
    data["detection"]["pixel_size_um"] = 0.65
    proto = parse_protocol(data, "p.yaml")
    hook = SmartHook(None, classify=lambda img, ps: [], preset_properties=lambda g, p: [],  # type: ignore[arg-type]
                     pixel_sizes_um=proto.pixel_sizes_um())
    assert hook.pixel_size_for("10x", {"PixelSize_um": 0.3}) == 0.65
    assert hook.pixel_size_for("60x", {"PixelSize_um": 0.1075}) == 0.1075  # not 10x's
