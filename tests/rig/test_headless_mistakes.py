"""Mistakes in a headless protocol on Micro-Manager's demo devices (with the virtual-sample
camera): one line naming the field to change. A config group misspelt ('objective' for
'Objective') said "no preset of the 'objective' group has a pixel-size calibration; ... define
pixel sizes in Micro-Manager's configuration", which sent the user to the wrong place."""

from __future__ import annotations

import pytest

from smartscope.errors import MicroscopeError
from smartscope.sim.hybrid import start_on_config


@pytest.mark.parametrize(("groups", "field", "group"), [
    ({"objective_group": "objective"}, "objective_group", "objective"),
    ({"channel_group": "Channels"}, "channel_group", "Channels"),
])
def test_a_config_group_not_in_the_configuration_is_named(mm_demo, groups, field, group):
    with pytest.raises(MicroscopeError, match=(
            rf"^microscope\.{field}: '{group}' is not a config group of the configuration "
            r"\(groups: .*Objective.*\); set microscope\." + field + " to one of them$")), \
            start_on_config(mm_demo, mm_demo / "MMConfig_demo.cfg", **groups):
        pass


def test_a_configuration_that_does_not_load_is_one_line(mm_demo, tmp_path):
    cfg = tmp_path / "broken.cfg"
    lines = (mm_demo / "MMConfig_demo.cfg").read_text().splitlines()
    cfg.write_text("\n".join([*lines[:20], "Property,Camera,NoSuchProp,5"]) + "\n")
    with pytest.raises(MicroscopeError) as err, start_on_config(mm_demo, cfg):
        pass
    said = str(err.value)
    assert "\n" not in said and "NoSuchProp" in said and said.endswith(
        "check that the configuration loads in the Micro-Manager app")


@pytest.mark.parametrize(("prop", "item", "what"), [("XYStage", "XY stage", "XY stage"),
                                                    ("Focus", "focus device", "focus device")])
def test_a_microscope_without_a_stage_is_named_not_a_traceback(own_demo_core, prop, item, what):
    """Core-XYStage or Core-Focus empty (a microscope without that motor, or a configuration
    that does not set it): check and the hook raised RuntimeError 'No device with label ""'."""
    import yaml

    from smartscope.acquire.hook import SmartHook
    from smartscope.acquire.preflight import BLOCKER, preflight
    from smartscope.protocol import parse_protocol
    from tests.rig.conftest import REPO

    data = yaml.safe_load((REPO / "acquisitions" / "demo_headless.yaml").read_text())
    proto = parse_protocol(data, "p.yaml", base_dir=REPO / "acquisitions")
    own_demo_core.setProperty("Core", prop, "")
    rows = {r.item: r for r in preflight(proto, own_demo_core, source="p.yaml")}
    assert rows[item].status == BLOCKER and f"none set (Core-{prop})" in rows[item].detail
    with pytest.raises(MicroscopeError, match=rf"^the microscope has no {what} set \(Core-{prop} "
                       rf"is empty\): .* set Core-{prop} in Micro-Manager's configuration"):
        SmartHook.from_protocol(proto, own_demo_core, classify=lambda image, ps: [],
                                source="p.yaml")
