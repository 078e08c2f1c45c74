"""Devices on the real core: labels, presets, limits, faults, start/stop."""

from __future__ import annotations

import numpy as np
import pytest

from smartscope.errors import MicroscopeError, StageLimitError
from smartscope.sim import ManualClock, SimConfig, start


def test_devices_and_presets(scope) -> None:
    core = scope.core
    assert core.getCameraDevice() == "Camera"
    assert core.getXYStageDevice() == "XY"
    assert core.getFocusDevice() == "Z"
    assert core.getShutterDevice() == "Shutter"
    assert set(core.getAvailableConfigs("Objective")) == {"10x", "20x", "60x"}
    assert set(core.getAvailableConfigs("Channel")) == {
        "DAPI", "FITC", "Rhodamine", "Cy5", "Brightfield"}
    assert core.getCurrentConfig("Channel") == "FITC"
    for obj, ps in (("20x", 0.3225), ("60x", 0.1075), ("10x", 0.645)):
        core.setConfig("Objective", obj)
        assert core.getPixelSizeUm() == pytest.approx(ps)
        assert core.get_pixel_size_um() == pytest.approx(ps)  # what pycromanager calls
        assert core.getCurrentPixelSizeConfig() == f"Res{obj}"
    core.setProperty("Objective", "Label", "20x")  # as pycromanager's "properties" do
    assert scope.objective == "20x" and scope.pixel_size_um == pytest.approx(0.3225)
    assert core.getPosition() == pytest.approx(scope.config.focal_plane_um("10x"))


def test_travel_limits_raise_device_errors(scope) -> None:
    core = scope.core
    with pytest.raises(StageLimitError, match="outside the travel limits"):
        core.setXYPosition(6000.0, 0.0)
    with pytest.raises(StageLimitError, match="SimConfig.z_limits_um"):
        core.setPosition(900.0)
    core.setXYPosition(100.0, -200.0)
    assert core.getXYPosition() == pytest.approx((100.0, -200.0))


def test_camera_timeout_fault(scope) -> None:
    scope.faults.camera_timeout(count=2)
    for _ in range(2):
        with pytest.raises(MicroscopeError, match="timed out"):
            scope.core.snapImage()
    scope.core.snapImage()
    assert scope.core.getImage().shape == (512, 512)
    scope.faults.camera_timeout(count=None)
    assert scope.faults.active() == ["camera_timeout"]
    scope.faults.clear()
    scope.core.snapImage()


def test_wrong_image_size_fault(scope) -> None:
    scope.faults.wrong_image_size((300, 200))
    scope.core.snapImage()
    assert scope.core.getImage().shape == (300, 200)
    scope.core.snapImage()
    assert scope.core.getImage().shape == (512, 512)


def test_objective_stuck_fault(scope) -> None:
    core = scope.core
    scope.faults.objective_stuck()
    with pytest.raises(MicroscopeError, match="turret"):
        core.setState("Objective", 2)
    with pytest.raises(RuntimeError, match="turret"):  # setConfig wraps device errors
        core.setConfig("Objective", "60x")
    scope.faults.objective_stuck(silent=True)
    core.setConfig("Objective", "60x")  # reported as done...
    assert core.getCurrentConfig("Objective") == "60x"
    assert core.getPixelSizeUm() == pytest.approx(0.1075)
    assert scope.objective == "10x"  # ...but the 10x is still in the light path
    assert len(scope.truth(in_view=True)) > 20
    scope.faults.clear()
    core.setConfig("Objective", "20x")
    core.setConfig("Objective", "60x")
    assert scope.objective == "60x"


def test_stage_refuses_fault(scope) -> None:
    scope.faults.xy_stage_refuses()
    with pytest.raises(MicroscopeError, match="refused"):
        scope.core.setXYPosition(10.0, 10.0)
    scope.faults.z_stage_refuses()
    with pytest.raises(MicroscopeError, match="refused"):
        scope.core.setPosition(1.0)
    scope.faults.clear()
    scope.core.setXYPosition(10.0, 10.0)


def test_start_twice_and_cleanup_after_errors(fast_config: SimConfig) -> None:
    from mmpycorex import launcher
    from pycromanager.acquisition.acq_eng_py.internal.engine import Engine

    with start(fast_config, clock=ManualClock()) as a:
        with pytest.raises(MicroscopeError, match="already running"):
            with start(fast_config):
                pass
        assert Engine.get_instance().core is a.core
    assert launcher._PYMMCORES == [] and Engine.get_instance() is None
    with pytest.raises(RuntimeError, match="boom"):
        with start(fast_config, clock=ManualClock()):
            raise RuntimeError("boom")
    assert launcher._PYMMCORES == [] and Engine.get_instance() is None
    with start(fast_config, clock=ManualClock()) as b:
        b.core.snapImage()
        assert b.core.getImage().mean() > fast_config.camera_offset_adu


def test_same_seed_same_frame(fast_config: SimConfig) -> None:
    frames = []
    for _ in range(2):
        with start(fast_config, clock=ManualClock(100.0)) as s:
            s.core.snapImage()
            frames.append(s.core.getImage())
    assert np.array_equal(frames[0], frames[1])


def test_truth_in_view(scope) -> None:
    cells = scope.truth(in_view=True)
    assert 20 < len(cells) < len(scope.truth())
    assert all(0 <= c.col_px < 512 and 0 <= c.row_px < 512 for c in cells)
    scope.core.setConfig("Objective", "60x")
    assert len(scope.truth(in_view=True)) < len(cells) / 5


def test_frame_records_keep_what_each_frame_saw(scope) -> None:
    core = scope.core
    core.snapImage()
    first_view = {c.id for c in scope.truth(in_view=True)}
    core.setXYPosition(300.0, 300.0)
    scope.clock.advance(600.0)
    core.snapImage()
    f1, f2 = scope.frames[-2:]
    assert (f1.index, f2.index) == (1, 2) and f2.t_s - f1.t_s == 600.0
    assert f1.view.stage_x_um == 0.0 and f2.view.stage_x_um == 300.0
    assert {c.id for c in scope.truth(in_view=True, frame=f1)} == first_view
    assert {c.id for c in scope.truth(in_view=True, frame=f2)} != first_view
