"""SimConfig validation and the sim clocks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smartscope.sim import DemoSpec, ManualClock, ScaledClock, SimConfig, demo_config


def test_defaults_describe_the_demo_microscope() -> None:
    cfg = SimConfig()
    assert cfg.sensor_px == 1024
    assert {k: o.pixel_size_um for k, o in cfg.objectives.items()} == {
        "10x": 0.645, "20x": 0.3225, "60x": 0.1075}
    assert set(cfg.channels) == {"DAPI", "FITC", "Rhodamine", "Cy5", "Brightfield"}
    assert cfg.focal_plane_um("60x") == cfg.focus_z_um + cfg.objectives["60x"].parfocal_z_offset_um


@pytest.mark.parametrize("bad", [
    {"sensor_px": 10},
    {"start_objective": "40x"},
    {"start_channel": "GFP"},
    {"x_limits_um": (5.0, -5.0)},
    {"mitosis_minutes": {"metaphase": 20.0}},
    {"unknown_field": 1},
    {"demo": {"metaphase_at_s": (10.0, 1.0)}},
])
def test_invalid_values_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        SimConfig.model_validate(bad)


def test_config_is_frozen() -> None:
    cfg = SimConfig()
    with pytest.raises(ValidationError):
        cfg.seed = 3  # type: ignore[misc]


def test_demo_config() -> None:
    cfg = demo_config(sensor_px=2048)
    assert cfg.demo == DemoSpec() and cfg.time_scale == 60 and cfg.seed == 0
    assert cfg.sensor_px == 2048


def test_scaled_clock_uses_injected_time_source() -> None:
    now = [100.0]
    clock = ScaledClock(time_scale=60, start_s=5.0, monotonic=lambda: now[0])
    assert clock.now_s() == 5.0
    now[0] += 2.0
    assert clock.now_s() == pytest.approx(125.0)
    clock.advance(10)
    assert clock.now_s() == pytest.approx(135.0)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_manual_clock() -> None:
    clock = ManualClock()
    clock.advance(3.5)
    clock.set(10.0)
    assert clock.now_s() == 10.0
    with pytest.raises(ValueError):
        clock.set(1.0)
