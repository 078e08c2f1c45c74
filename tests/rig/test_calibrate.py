"""``smartscope calibrate`` on Micro-Manager's demo devices in ``Fluorescent Beads`` mode, where
the beads move with the real XY stage by 1 px per um (the adapter ignores the objective, so
image shifts match Micro-Manager's calibration at 10X only)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from smartscope.acquire import calibrate
from smartscope.acquire.calibration import calibration_of
from smartscope.protocol import load_protocol
from tests.rig.conftest import REPO
from tests.rig.test_demo_run import _protocol_for


@pytest.fixture(scope="module")
def bead_core(mm_demo):
    import pymmcore

    core = pymmcore.CMMCore()
    core.setDeviceAdapterSearchPaths([str(mm_demo)])
    core.loadSystemConfiguration(str(mm_demo / "MMConfig_demo.cfg"))
    core.setProperty("Camera", "Mode", "Fluorescent Beads")
    core.setExposure(20)
    yield core
    core.unloadAllDevices()


def test_10x_gives_1_um_per_px_upright_as_micromanager(bead_core):
    bead_core.setXYPosition(30.0, -40.0)
    bead_core.waitForSystem()
    cal = calibrate.measure(bead_core, objective_group="Objective", objective="10X",
                            step_um=20.0)
    assert cal.pixel_size_um == pytest.approx(1.0, abs=0.01)
    assert cal.orientation.model_dump() == {"flip_x": False, "flip_y": False, "rotation_deg": 0}
    assert abs(cal.residual_deg) < 0.5 and cal.fit_error < 0.01
    assert cal.micromanager.config == "Res10x" and cal.micromanager.pixel_size_um == 1.0
    assert re.search(r"Res10x\): 1 um/px, measured differs by [+-]0\.\d%", "\n".join(cal.report()))
    assert (bead_core.getXPosition(), bead_core.getYPosition()) == pytest.approx(
        (30.0, -40.0), abs=0.01)  # back where it was (the demo stage has 5 nm steps)


def test_20x_disagrees_with_micromanager_as_the_adapter_ignores_the_objective(bead_core):
    cal = calibrate.measure(bead_core, objective_group="Objective", objective="20X",
                            step_um=20.0)
    assert cal.micromanager.pixel_size_um == 0.5
    assert cal.pixel_size_um == pytest.approx(1.0, abs=0.01)  # the demo camera's 1 px per um
    assert re.search(r"differs by \+10[01]\.\d%", "\n".join(cal.report()))


@pytest.mark.parametrize(("flip", "want"), [
    (lambda im: im[:, ::-1], {"flip_x": True, "flip_y": False, "rotation_deg": 0}),
    (lambda im: im[::-1, :], {"flip_x": False, "flip_y": True, "rotation_deg": 0}),
    (lambda im: np.rot90(im, 1), None),
])
def test_flipped_and_rotated_cameras_are_recognised(bead_core, flip, want):
    """Real bead images of the demo stage, seen by a camera mounted flipped or rotated (the
    image transformed as the camera would deliver it)."""
    bead_core.setConfig("Objective", "10X")
    snaps = []
    for x, y in ((0.0, 0.0), (15.0, 0.0), (0.0, 15.0)):
        bead_core.setXYPosition(x, y)
        bead_core.waitForSystem()
        bead_core.snapImage()
        snaps.append(flip(np.asarray(bead_core.getImage())))
    u = calibrate._shift(snaps[0], snaps[1])
    v = calibrate._shift(snaps[0], snaps[2])
    cal = calibrate.from_shifts(u, v, 15.0, objective="10X",
                                micromanager=calibration_of(bead_core, "Objective", "10X"))
    assert cal.pixel_size_um == pytest.approx(1.0, abs=0.01) and cal.fit_error < 0.01
    if want is not None:
        assert cal.orientation.model_dump() == want
    else:  # np.rot90: image axes turned by 90 degrees; a pixel -> stage matrix that undoes it
        a, b, d, e = cal.matrix_um_per_px
        assert (round(a), round(b), round(d), round(e)) in {(0, 1, -1, 0), (0, -1, 1, 0)}
        assert cal.orientation.rotation_deg in (90, 270)


@pytest.mark.slow
def test_calibrate_command_writes_the_orientation(mm_demo, tmp_path):
    cfg = tmp_path / "beads.cfg"
    cfg.write_text((mm_demo / "MMConfig_demo.cfg").read_text()
                   + "Property,Camera,Mode,Fluorescent Beads\n")
    path = _protocol_for(mm_demo, tmp_path, virtual_sample=None, config_file=str(cfg),
                         camera={"flip_x": True, "flip_y": False, "rotation_deg": 0})
    path.write_text("# bead slide, 10X: measured before every run\n" + path.read_text())
    out = path  # onto the protocol itself: only microscope.camera changes

    def calibrate_to(target):
        return subprocess.run([sys.executable, "-m", "smartscope", "calibrate", str(path),
                               "--objective", "10X", "--write", str(target)], cwd=REPO,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})

    proc = calibrate_to(cfg)  # an input of the run: refused before the stage moves
    assert proc.returncode != 0 and "--write" in proc.stderr and "input" in proc.stderr
    assert "Traceback" not in proc.stderr and "pixel size" not in proc.stdout
    assert "Fluorescent Beads" in cfg.read_text()
    proc = calibrate_to(out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pixel size 1.0000 um/px" in proc.stdout and "Micro-Manager (Res10x)" in proc.stdout
    written = load_protocol(out)
    assert written.microscope.camera.flip_x is False  # the wrong flip in the protocol is fixed
    assert yaml.safe_load(out.read_text())["microscope"]["camera"]["rotation_deg"] == 0
    assert out.read_text().startswith("# bead slide, 10X")  # the user's comment is kept


@pytest.mark.parametrize(("step_um", "limits", "says"), [
    (300.0, (None, None), "over a quarter of the 512 px field"),  # 10X: 1 um/px
    (50.0, ((-100.0, 60.0), None), "outside microscope.stage_limits.x_um [-100, 60]"),
    (50.0, (None, (-100.0, 0.0)), "outside microscope.stage_limits.y_um [-100, 0]"),
])
def test_a_step_too_large_for_the_field_or_the_limits_is_refused_before_moving(
        bead_core, step_um, limits, says):
    from smartscope.errors import MicroscopeError

    bead_core.setXYPosition(30.0, -40.0)
    bead_core.waitForSystem()
    with pytest.raises(MicroscopeError, match=re.escape(says)):
        calibrate.measure(bead_core, objective_group="Objective", objective="10X",
                          step_um=step_um, limits=limits)
    assert (bead_core.getXPosition(), bead_core.getYPosition()) == pytest.approx(
        (30.0, -40.0), abs=0.01)
