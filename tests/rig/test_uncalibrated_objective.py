"""An objective the protocol images with but that has no pixel size (no Micro-Manager
calibration matches it, none in the protocol) is refused before the run, naming the objective
and what to set; before, the run started and every follow-up image at that objective failed
with 'pixel_size_um=0.0: give a positive number' (MMCore reports 0 um/px uncalibrated)."""

from __future__ import annotations

import pytest
import yaml

from smartscope.acquire.hook import SmartHook
from smartscope.errors import MicroscopeError
from smartscope.protocol import parse_protocol
from tests.rig.conftest import REPO


@pytest.fixture
def core_without_40x(mm_demo, tmp_path):
    import pymmcore

    cfg = tmp_path / "no40x.cfg"
    lines = (mm_demo / "MMConfig_demo.cfg").read_text().splitlines()
    cfg.write_text("\n".join(line for line in lines if "Res40x" not in line) + "\n")
    core = pymmcore.CMMCore()
    core.setDeviceAdapterSearchPaths([str(mm_demo)])
    core.loadSystemConfiguration(str(cfg))
    yield core
    core.unloadAllDevices()


def _protocol(pixel_size_40x=None):
    data = yaml.safe_load((REPO / "acquisitions" / "demo_headless.yaml").read_text())
    if pixel_size_40x is not None:
        data["microscope"]["objectives"]["40X"]["pixel_size_um"] = pixel_size_40x
    return parse_protocol(data, "p.yaml", base_dir=REPO / "acquisitions")


def test_an_uncalibrated_follow_up_objective_is_refused_before_the_run(core_without_40x):
    with pytest.raises(MicroscopeError, match=r"^p\.yaml: objective '40X' has no pixel size: .*"
                       r"set microscope\.objectives\.40X\.pixel_size_um$"):
        SmartHook.from_protocol(_protocol(), core_without_40x, classify=lambda image, ps: [],
                                source="p.yaml")


def test_a_pixel_size_in_the_protocol_is_enough(core_without_40x):
    hook = SmartHook.from_protocol(_protocol(0.25), core_without_40x,
                                   classify=lambda image, ps: [], source="p.yaml")
    assert hook.pixel_size_for("40X", {"PixelSizeUm": 0.0}) == 0.25
    # an image's 0 um/px (uncalibrated) is never taken for a pixel size: the core's current
    core_without_40x.setConfig("Objective", "20X")
    core_without_40x.waitForSystem()
    assert hook.pixel_size_for("20X", {"PixelSizeUm": "0"}) == 0.5
