"""``set_entry``: calibrate --write changes microscope.camera and keeps the rest as written."""

from pathlib import Path

import pytest
import yaml

from smartscope.errors import ProtocolError
from smartscope.protocol import parse_protocol
from smartscope.protocol.edit import is_protocol_text, set_entry

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


@pytest.mark.parametrize("text", [
    "microscope:\n  camera: &cam {flip_x: true}\n  seed: 1\nscreening: {camera: *cam}\n",
    "microscope:\n  ? camera\n  : {flip_x: true}\n  seed: 1\n",
    "rig: &r\n  seed: 1\nmicroscope: *r\n",  # the section shared through an alias
])
def test_an_edit_that_would_change_other_values_is_refused_with_the_line_to_write(text):
    with pytest.raises(ProtocolError, match="cannot change microscope.camera in place") as e:
        set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
    assert "'camera: {flip_x: false, flip_y: true, rotation_deg: 90}'" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", [
    "microscope:\n  camera:\n  seed: 1\n",  # empty value
    "microscope:\n  seed: 1\n  camera:",  # empty value, no newline at the end
    "microscope:\n  camera: |\n    notes\n  seed: 1\n",  # a block scalar's end mark
    "---\n# rig\nmicroscope:\n  seed: 1  # s\n...\n",
    "\ufeffmicroscope:\n  name: \"Zeiss \u00fc \U0001f52c\"  # \u76f8\u673a\n  camera: {}\n",
])
def test_unusual_but_valid_texts_load_to_the_old_data_with_the_new_camera(text):
    out = set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
    old = yaml.safe_load(text)
    old["microscope"]["camera"] = CAM
    assert yaml.safe_load(out) == old
    assert [ln for ln in text.splitlines() if "#" in ln] == [
        ln for ln in out.splitlines() if "#" in ln]


def test_crlf_line_endings_stay_crlf():
    for text, lines in (("microscope:\r\n  seed: 1\r\n", 3),  # inserted
                        ("microscope:\r\n  seed: 1", 2),  # inserted, no line break at the end
                        ("microscope:\r\n  camera:\r\n    a: 1\r\n", 2)):  # replaced
        out = set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
        assert out.count("\n") == out.count("\r\n") == lines
        assert yaml.safe_load(out)["microscope"]["camera"] == CAM


def test_a_repeated_key_or_a_yaml_error_is_one_line_naming_the_file():
    for text, says in (("microscope:\n  camera: {}\n  camera: {}\n", "repeated"),
                       ("microscope:\n  type: [unclosed\n", "line 3")):
        with pytest.raises(ProtocolError, match=says) as e:
            set_entry(text, ("microscope", "camera"), CAM, source="p.yaml")
        assert str(e.value).startswith("p.yaml: ") and "\n" not in str(e.value)


@pytest.mark.slow
def test_calibrate_write_on_the_simulator_keeps_crlf_and_permissions_and_refuses_early(
        tmp_path, capsys):
    """``smartscope calibrate --write``: the simulator's stage (4 s on 2 cores)."""
    from smartscope.cli import main

    text = (REPO / "acquisitions" / "mitosis_zoom.yaml").read_text().replace(
        "../models/", str(REPO / "models") + "/")
    proto = tmp_path / "p.yaml"
    proto.write_bytes(text.replace("\n", "\r\n").encode())
    proto.chmod(0o640)
    assert main(["calibrate", str(proto), "--write", str(proto)]) == 0
    out = proto.read_bytes().decode()
    assert out.count("\n") == out.count("\r\n") == text.count("\n") + 1
    assert "  camera: {flip_x: false, flip_y: false, rotation_deg: 0}\r\n" in out
    assert proto.stat().st_mode & 0o777 == 0o640
    # an uneditable camera entry is refused before the stage moves, naming the file
    bad = tmp_path / "q.yaml"
    bad.write_text(text.replace("  seed: 3\n", "  seed: 3\n  ? camera\n  : {flip_x: true}\n"))
    capsys.readouterr()
    assert main(["calibrate", str(bad), "--write", str(tmp_path / "sub" / "o.yaml")]) != 0
    err = capsys.readouterr()
    assert f"error: {bad}: cannot change microscope.camera" in err.err and "moved" not in err.out
    assert not (tmp_path / "sub").exists()
    # through a link: the linked protocol is written, the link stays
    link = tmp_path / "link.yaml"
    link.symlink_to(proto.name)
    proto.write_text(text)
    assert main(["calibrate", str(link), "--write", str(link)]) == 0
    assert link.is_symlink() and "  camera: {flip_x: false" in proto.read_text()
    # another tool's YAML file is not replaced (any existing .yaml was)
    other = tmp_path / "mkdocs.yml"
    other.write_text("site_name: x\n")
    assert main(["calibrate", str(proto), "--write", str(other)]) == 2
    assert other.read_text() == "site_name: x\n"
    assert "was not written by this command" in capsys.readouterr().err


def test_only_protocol_texts_count_as_protocols():
    assert is_protocol_text((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    for text in ("site_name: x\n", "", "[1, 2]\n", "a: [unclosed\n", "microscope: {}\n"):
        assert not is_protocol_text(text)


def test_calibrate_write_refuses_a_protocol_that_is_not_utf8(tmp_path, capsys, monkeypatch):
    """A cp1252 file ('5 \xb5m' in a comment) loads where the system encoding is cp1252
    (Windows), but --write keeps the text as UTF-8: one line, before the stage moves."""
    import pathlib

    from smartscope.cli import main

    text = (REPO / "acquisitions" / "mitosis_zoom.yaml").read_text().replace(
        "../models/", str(REPO / "models") + "/")
    proto = tmp_path / "p.yaml"
    proto.write_bytes(b"# 5 \xb5m steps\n" + text.encode())
    read_text = pathlib.Path.read_text
    monkeypatch.setattr(pathlib.Path, "read_text",
                        lambda self, encoding=None, errors=None: read_text(self, "cp1252"))
    assert main(["calibrate", str(proto), "--write", str(proto)]) == 2
    err = capsys.readouterr()
    assert f"error: {proto}: not UTF-8 text" in err.err and err.out == ""
