"""Trigger filters that no nucleus of a screening frame can pass are refused on the
microscope (an edge margin of half the field, a minimum area above the field's), by
``smartscope check`` and before a run starts; on Micro-Manager's demo devices (512 x 512 px,
0.5 um/px at 20X: a 256 x 256 um field)."""

from __future__ import annotations

import re

import pytest
import yaml

from smartscope.acquire.hook import SmartHook
from smartscope.acquire.preflight import BLOCKER, OK, preflight
from smartscope.errors import ProtocolError
from smartscope.protocol import parse_protocol
from tests.rig.conftest import REPO


def _protocol(**trigger):
    data = yaml.safe_load((REPO / "acquisitions" / "demo_headless.yaml").read_text())
    data["triggers"][0].update(trigger)
    return parse_protocol(data, "p.yaml", base_dir=REPO / "acquisitions")


@pytest.mark.parametrize(("trigger", "says"), [
    ({"edge_margin_um": 128}, "field 'triggers[0].edge_margin_um': value 128 leaves no place"),
    ({"edge_margin_um": 5000}, "the 256 x 256 um field at 20X (0.5 um/px)"),
    ({"min_area_um2": 70000}, "field 'triggers[0].min_area_um2': value 70000 is larger"),
])
def test_a_filter_no_nucleus_can_pass_is_refused(demo_core, trigger, says):
    proto = _protocol(**trigger)
    rows = {r.item: r for r in preflight(proto, demo_core, source="p.yaml")}
    assert rows["trigger filters"].status == BLOCKER and says in rows["trigger filters"].detail
    with pytest.raises(ProtocolError, match=r"^p\.yaml: .*" + re.escape(says)):
        SmartHook.from_protocol(proto, demo_core, classify=lambda image, ps: [], source="p.yaml")


def test_a_margin_that_leaves_room_passes(demo_core):
    rows = {r.item: r for r in preflight(_protocol(edge_margin_um=100), demo_core)}
    assert rows["trigger filters"].status == OK
