"""A protocol without screening positions screens where the stage is; on Micro-Manager's demo
devices, limits that exclude that place are refused naming the file and the stage position."""

from __future__ import annotations

import pytest
import yaml

from smartscope.acquire.hook import SmartHook
from smartscope.errors import ProtocolError
from smartscope.protocol import parse_protocol
from tests.rig.conftest import REPO


@pytest.mark.parametrize(("limits", "says"), [
    ({"x_um": [100, 200]}, "x target"),
    ({"z_um": [10, 50]}, "z target"),
])
def test_limits_that_exclude_the_stage_are_refused(demo_core, limits, says):
    data = yaml.safe_load((REPO / "acquisitions" / "demo_headless.yaml").read_text())
    data["microscope"]["stage_limits"].update(limits)
    proto = parse_protocol(data, "p.yaml", base_dir=REPO / "acquisitions")
    demo_core.setXYPosition(0.0, 0.0)
    demo_core.setPosition(0.0)
    demo_core.waitForSystem()
    with pytest.raises(ProtocolError) as e:
        SmartHook.from_protocol(proto, demo_core, classify=lambda image, ps: [], source="p.yaml")
    msg = str(e.value)
    assert msg.startswith("p.yaml: the stage's current position") and says in msg
    assert "screening.positions[" not in msg


def test_an_objectives_key_that_is_no_preset_is_refused(demo_core):
    """'40x' for the demo's '40X' preset: its parfocal offset would never be applied."""
    data = yaml.safe_load((REPO / "acquisitions" / "demo_headless.yaml").read_text())
    objectives = data["microscope"]["objectives"]
    objectives["40x"] = objectives.pop("40X")
    proto = parse_protocol(data, "p.yaml", base_dir=REPO / "acquisitions")
    with pytest.raises(ProtocolError, match=r"^p\.yaml: field 'microscope\.objectives\.40x': "
                       r"value '40x' is not a preset of the 'Objective' group \(presets: 10X, "
                       r"20X, 40X\)"):
        SmartHook.from_protocol(proto, demo_core, classify=lambda image, ps: [], source="p.yaml")
