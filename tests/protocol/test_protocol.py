"""Protocol schema: the shipped examples load, and bad input gives one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from smartscope.errors import ProtocolError
from smartscope.protocol import (
    ChangeInterval,
    Grid,
    ReturnToScreening,
    ZStack,
    check_phases,
    load_protocol,
    parse_protocol,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "acquisitions").glob("*.yaml"))
FIVE = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")


@pytest.fixture
def base() -> dict:
    return yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())


def _error(data: dict) -> str:
    with pytest.raises(ProtocolError) as e:
        parse_protocol(data, "p.yaml")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("p.yaml: ")
    return msg


def test_examples_exist_and_load():
    names = {p.name for p in EXAMPLES}
    assert {"mitosis_zoom.yaml", "anaphase_burst.yaml", "modality_switch.yaml"} <= names
    for path in EXAMPLES:
        proto = load_protocol(path)
        assert proto.version == 1
        assert proto.triggers
        check_phases(proto, FIVE, str(path))
        # the bundle path is resolved relative to the protocol file, not the working directory
        assert proto.model.bundle == (REPO / "models" / "hela_h2b_5class").resolve()


def test_stall_timeout_from_the_protocol(base, tmp_path):
    from smartscope.acquire import Run

    assert parse_protocol(base).microscope.stall_timeout_s == 60
    base["microscope"]["stall_timeout_s"] = 300
    proto = parse_protocol(base)
    assert Run(proto, tmp_path / "run").stall_timeout_s == 300
    assert Run(proto, tmp_path / "run", stall_timeout_s=7).stall_timeout_s == 7


def test_model_threads_default_to_auto(base):
    assert parse_protocol(base).model.num_threads == "auto"
    base["model"]["num_threads"] = 2
    assert parse_protocol(base).model.num_threads == 2


def test_protocol_is_frozen(base):
    proto = parse_protocol(base)
    with pytest.raises(ValidationError):
        proto.screening.exposure_ms = 3  # type: ignore[misc]


def test_implicit_return_to_screening(base):
    proto = parse_protocol(base)
    program = proto.triggers[0].program()
    assert isinstance(program[-1], ReturnToScreening)
    base["triggers"][0]["actions"] = [{"type": "burst", "n_frames": 3}]
    program = parse_protocol(base).triggers[0].program()
    assert [a.type for a in program] == ["burst", "return_to_screening"]


def test_phase_accepts_one_or_many(base):
    base["triggers"][0]["phase"] = ["metaphase", "anaphase"]
    assert parse_protocol(base).triggers[0].phase == ("metaphase", "anaphase")


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["screening"].update(exposure=3), ["screening.exposure", "exposure_ms"]),
        (lambda d: d["triggers"][0]["actions"][2].update(intervl_s=1),
         ["triggers[0].actions[2].intervl_s", "did you mean 'interval_s'"]),
        (lambda d: d["microscope"].update(sed=1), ["microscope.sed", "'seed'"]),
        (lambda d: d.update(triggerz=[]), ["'triggerz'", "'triggers'"]),
        (lambda d: d["screening"].update(interval_s=-1), ["screening.interval_s", "-1"]),
        (lambda d: d["screening"].update(exposure_ms=0), ["screening.exposure_ms", "0"]),
        (lambda d: d["screening"].update(positions=[]), ["screening.positions"]),
        (lambda d: d["screening"].pop("objective"), ["screening.objective", "missing"]),
        (lambda d: d.update(version=2), ["version", "2"]),
        (lambda d: d["triggers"][0]["actions"][0].update(type="teleport"),
         ["triggers[0].actions[0]", "'teleport'", "centre_on_cell"]),
        (lambda d: d["microscope"].update(type="confocal"), ["microscope", "'confocal'"]),
        (lambda d: d["triggers"].append(copy.deepcopy(d["triggers"][0])),
         ["triggers", "metaphase_zoom", "twice"]),
        (lambda d: d["triggers"][0]["actions"].insert(0, {"type": "stop"}),
         ["triggers[0]", "stop", "last"]),
        (lambda d: d["microscope"].update(stage_limits={"x_um": [5, 1]}),
         ["microscope.stage_limits", "low < high"]),
        (lambda d: d["triggers"][0].update(min_confidence=1.5),
         ["triggers[0].min_confidence", "1.5"]),
        (lambda d: d["screening"].pop("n_timepoints"), ["n_timepoints or duration_s"]),
        (lambda d: d["screening"].update(grid={"rows": 2, "cols": 2, "spacing_um": 100},
                                         positions=[{"x_um": 0, "y_um": 0}]),
         ["positions or grid"]),
        (lambda d: d["microscope"]["objectives"]["60x"].update(parfocal=1),
         ["microscope.objectives.60x.parfocal", "parfocal_z_offset_um"]),
        (lambda d: d["triggers"][0]["actions"][2].update(min_frames=20, max_frames=3),
         ["min_frames", "max_frames"]),
        (lambda d: d["microscope"].update(stall_timeout_s=0.01),
         ["stall_timeout_s is 0.01 s", "screening.exposure_ms is 20 ms", "raise"]),
        (lambda d: d["microscope"].update(stall_timeout_s=-1),
         ["microscope.stall_timeout_s", "-1"]),
        (lambda d: d["model"].update(num_threads=0), ["model.num_threads", "got 0", "auto"]),
        (lambda d: d["model"].update(num_threads="all"), ["model.num_threads", "'all'"]),
        (lambda d: d["triggers"][0].update(evidence="mean", persistence="field"),
         ["triggers[0]", "evidence: mean", "persistence: cell"]),
        (lambda d: d["triggers"][0].update(evidence="median"), ["triggers[0].evidence",
                                                                "'median'"]),
    ],
)
def test_bad_input_one_line_errors(base, mutate, expected):
    mutate(base)
    msg = _error(base)
    for part in expected:
        assert part in msg, msg


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("version: 1\nscreening:\n  objective: 10x\n    channel: FITC\n")
    with pytest.raises(ProtocolError, match=r"bad.yaml: line \d+"):
        load_protocol(p)


def test_missing_empty_and_non_mapping(tmp_path):
    with pytest.raises(ProtocolError, match="not found"):
        load_protocol(tmp_path / "nope.yaml")
    p = tmp_path / "empty.yaml"
    p.write_text("")
    with pytest.raises(ProtocolError, match="empty"):
        load_protocol(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ProtocolError, match="mapping"):
        load_protocol(p)


def test_phase_not_in_model(base):
    base["triggers"][0]["phase"] = "metafase"
    proto = parse_protocol(base)
    with pytest.raises(ProtocolError) as e:
        check_phases(proto, FIVE, "p.yaml")
    msg = str(e.value)
    assert "triggers[0].phase" in msg and "'metafase'" in msg and "'metaphase'" in msg


def test_grid_positions_centred():
    g = Grid(centre_x_um=100, centre_y_um=-50, rows=2, cols=3, spacing_um=10)
    pos = g.positions()
    assert len(pos) == 6
    assert sum(p.x_um for p in pos) / 6 == pytest.approx(100)
    assert sum(p.y_um for p in pos) / 6 == pytest.approx(-50)
    assert pos[1].x_um - pos[0].x_um == pytest.approx(10)


def test_z_stack_offsets_centred():
    z = ZStack(range_um=6, step_um=1.5)
    assert z.offsets_um() == pytest.approx([-3, -1.5, 0, 1.5, 3])


def test_change_interval_defaults():
    a = ChangeInterval(interval_s=0.5)
    assert a.min_frames == 1 and a.while_phase_persists


def test_headless_paths_relative_to_file(tmp_path, base):
    base["microscope"] = {"type": "headless", "mm_dir": "mm", "config_file": "mm/demo.cfg",
                          "stage_limits": {"x_um": [-1, 1], "y_um": [-1, 1], "z_um": [-1, 1]}}
    p = tmp_path / "h.yaml"
    p.write_text(yaml.safe_dump(base))
    proto = load_protocol(p)
    assert proto.microscope.config_file == (tmp_path / "mm" / "demo.cfg").resolve()


def test_detection_default_is_the_validated_diameter():
    """A protocol without `detection:` detects as `smartscope classify` does (18 um, measured
    on the real HeLa masks by benchmarks/detection_quality.py)."""
    from smartscope.protocol.schema import Detection
    from smartscope.vision import DEFAULT_DIAMETER_UM

    assert Detection().diameter_um == DEFAULT_DIAMETER_UM


def _zstack(d: dict, range_um: float) -> None:
    d["triggers"][0]["actions"].insert(-1, {"type": "z_stack", "range_um": range_um,
                                            "step_um": 1})


@pytest.mark.parametrize(("mutate", "expected"), [
    # the 60x parfocal offset (3 um) alone is past a 2 um travel: every follow-up refused
    (lambda d: d["microscope"].update(max_focus_travel_um=2),
     ["triggers[0].actions[0].objective '60x'", "+3 um", "max_focus_travel_um (2)"]),
    # 3 um offset + 60/2 um of stack = 33 um > 20 um
    (lambda d: (d["microscope"].update(max_focus_travel_um=20), _zstack(d, 60)),
     ["range_um 60 reaches 33 um", "max_focus_travel_um (20)", "range_um <= 34"]),
    (lambda d: (d["microscope"].update(stage_limits={"x_um": [-100, 100]}),
                d["screening"].update(positions=[{"name": "A1", "x_um": 500, "y_um": 0}])),
     ["screening position 0 ('A1') x_um 500", "stage_limits.x_um [-100, 100]"]),
    (lambda d: (d["microscope"].update(stage_limits={"z_um": [0, 10]}),
                d["screening"].update(positions=[{"x_um": 0, "y_um": 0, "z_um": -5}])),
     ["screening position 0 z_um -5", "stage_limits.z_um [0, 10]"]),
])
def test_moves_that_every_run_would_refuse_are_refused_up_front(base, mutate, expected):
    mutate(base)
    msg = _error(base)
    for part in expected:
        assert part in msg, msg


def test_moves_inside_the_travel_pass(base):
    base["microscope"].update(max_focus_travel_um=20)
    _zstack(base, 34)  # 3 + 17 = 20 um: at the limit, allowed
    parse_protocol(base, "p.yaml")
