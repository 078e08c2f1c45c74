"""``set_entry``: calibrate --write changes microscope.camera and keeps the rest as written."""

from pathlib import Path

import pytest
import yaml

from smartscope.errors import ProtocolError
from smartscope.protocol import parse_protocol
from smartscope.protocol.edit import set_entry

REPO = Path(__file__).resolve().parents[2]
CAM = {"flip_x": False, "flip_y": True, "rotation_deg": 90}


def test_an_existing_block_camera_is_replaced_and_comments_stay():
    text = ("version: 1\nmicroscope:   # the rig\n  type: simulated\n  camera:\n"
            "    flip_x: true   # old guess\n    flip_y: false\n\n  # objectives below\n"
            "  objective_group: Objective\nscreening: {objective: 10x}  # keep\n")
    out = set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
    assert yaml.safe_load(out)["microscope"]["camera"] == CAM
    assert "# the rig" in out and "# objectives below" in out and "# keep" in out
    assert "old guess" not in out  # the replaced value's own comment goes with it
    assert yaml.safe_load(out)["microscope"]["objective_group"] == "Objective"


def test_a_missing_camera_is_inserted_at_the_sections_indentation():
    text = "microscope:\n    type: simulated   # sim\n    seed: 3\nscreening:\n  channel: FITC\n"
    out = set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
    data = yaml.safe_load(out)
    assert data["microscope"] == {"camera": CAM, "type": "simulated", "seed": 3}
    assert "# sim" in out and data["screening"] == {"channel": "FITC"}


def test_a_flow_value_is_replaced_in_place():
    text = "microscope:\n  camera: {flip_x: true, flip_y: true, rotation_deg: 0}  # c\n  seed: 1\n"
    out = set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
    assert out.splitlines()[1] == ("  camera: {flip_x: false, flip_y: true, "
                                   "rotation_deg: 90}  # c")


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "acquisitions").glob("*.yaml")))
def test_every_example_protocol_keeps_its_comments_and_stays_valid(name):
    path = REPO / "acquisitions" / name
    text = path.read_text()
    out = set_entry(text, ("microscope", "camera"), CAM, source=name)
    before = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("#")]
    after = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("#")]
    assert before == after
    data = yaml.safe_load(out)
    old = yaml.safe_load(text)
    old["microscope"]["camera"] = CAM
    assert data == old
    parse_protocol(data, name, base_dir=path.parent)


@pytest.mark.parametrize(("text", "says"), [
    ("screening: {}\n", "no 'microscope:' section"),
    ("microscope: {type: simulated}\n", "flow style"),
    ("microscope: [1, 2]\n", "no 'microscope:' section"),
    ("microscope:\n  type: [unclosed\n", "not valid YAML"),
])
def test_what_cannot_be_edited_is_refused_with_the_file_name(text, says):
    with pytest.raises(ProtocolError, match=says) as e:
        set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
    assert "p.yaml" in str(e.value)
