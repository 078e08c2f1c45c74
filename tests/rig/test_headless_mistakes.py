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
