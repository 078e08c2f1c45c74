"""What the Micro-Manager app path hands to pycromanager, on the demo devices' core.

No Micro-Manager app runs here, so pycromanager's ``Acquisition`` is replaced by a stand-in that
records its arguments (the one piece of the Java path that cannot run on this machine)."""

from __future__ import annotations

from types import SimpleNamespace

import pycromanager
import pytest
import yaml

from smartscope.acquire.connect import ScopeHandle
from smartscope.acquire.prepare import check_one_camera
from smartscope.acquire.run import Run
from smartscope.errors import MicroscopeError
from smartscope.protocol import parse_protocol
from tests.rig.test_demo_run import PROTOCOL


class _Stop(Exception):
    pass


def test_microscope_port_reaches_the_acquisition(demo_core, tmp_path, monkeypatch):
    data = yaml.safe_load(PROTOCOL.read_text())
    data["microscope"] = {**{k: v for k, v in data["microscope"].items()
                             if k not in ("mm_dir", "config_file", "virtual_sample")},
                          "type": "micromanager", "port": 4999}
    data["model"]["bundle"] = str((PROTOCOL.parent / data["model"]["bundle"]).resolve())
    proto = parse_protocol(data, "bridge.yaml")
    seen: dict = {}

    def acquisition_stand_in(**kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(pycromanager, "Acquisition", acquisition_stand_in)
    scope = ScopeHandle(core=demo_core, kind="micromanager")
    with pytest.raises(_Stop):
        Run(proto, tmp_path / "run", scope=scope).execute()
    assert seen["port"] == 4999 and seen["directory"] == str(tmp_path / "run")


def test_a_multi_camera_is_refused_with_what_to_change(demo_core):
    check_one_camera(demo_core)  # the demo's single camera passes
    # Micro-Manager's Multi Camera adapter is not among the demo devices: a core reporting two
    # camera channels stands in for it
    two = SimpleNamespace(getNumberOfCameraChannels=lambda: 2,
                          getCameraDevice=lambda: "Multi Camera")
    with pytest.raises(MicroscopeError, match=r"'Multi Camera' delivers 2 images.*single camera"):
        check_one_camera(two)
