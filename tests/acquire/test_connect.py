"""Connecting: clear errors for unreachable real microscopes, the simulator standing in for a
real one, presets checked against the microscope, core calls across core flavours."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from smartscope.acquire import corecalls
from smartscope.acquire.connect import bridge_unreachable_message, connect, sim_config_for
from smartscope.acquire.prepare import check_presets, resolve_positions
from smartscope.errors import MicroscopeError, ProtocolError
from smartscope.protocol import parse_protocol

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LIMITS = {"x_um": [-5000, 5000], "y_um": [-5000, 5000], "z_um": [-500, 500]}


def _protocol(**microscope):
    data = yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    data["microscope"] = {"stage_limits": LIMITS, **microscope}
    return parse_protocol(data, "p.yaml", base_dir=REPO / "acquisitions")


def test_bridge_unreachable_is_a_clear_error():
    port = _free_port()
    proto = _protocol(type="micromanager", port=port, timeout_s=0.3)
    with pytest.raises(MicroscopeError) as e:
        with connect(proto):
            pass
    msg = str(e.value)
    assert f"port {port}" in msg and "start the Micro-Manager app" in msg
    assert "Run pycro-manager server" in msg and "\n" not in msg


def test_bridge_message_names_port_and_option():
    msg = bridge_unreachable_message(4827, "timeout")
    assert "4827" in msg and "Tools > Options" in msg and "microscope.port" in msg


def test_headless_missing_folder_and_config(tmp_path):
    proto = _protocol(type="headless", mm_dir=str(tmp_path / "nope"), config_file="x.cfg")
    with pytest.raises(MicroscopeError, match="microscope.mm_dir"):
        with connect(proto):
            pass
    (tmp_path / "mm").mkdir()
    proto = _protocol(type="headless", mm_dir=str(tmp_path / "mm"),
                      config_file=str(tmp_path / "missing.cfg"))
    with pytest.raises(MicroscopeError, match="microscope.config_file"):
        with connect(proto):
            pass


def test_simulate_uses_the_protocols_objectives_and_channels():
    proto = _protocol(type="micromanager", objectives={
        "10x": {"parfocal_z_offset_um": 0.0},
        "60x": {"parfocal_z_offset_um": 4.0, "pixel_size_um": 0.11},
        "40x": {"parfocal_z_offset_um": 2.0},
    })
    cfg = sim_config_for(proto)
    assert cfg.objectives["60x"].parfocal_z_offset_um == 4.0
    assert cfg.objectives["60x"].pixel_size_um == 0.11
    assert cfg.objectives["40x"].magnification == 40
    assert cfg.start_objective == "10x" and cfg.start_channel == "FITC"
    assert cfg.demo is not None
    data = yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    data["microscope"] = {"type": "micromanager", "stage_limits": LIMITS}
    data["screening"]["channel"] = "GFP"
    cfg = sim_config_for(parse_protocol(data, "p.yaml"))
    assert "GFP" in cfg.channels and cfg.start_channel == "GFP"
    assert cfg.time_scale == 60  # the simulated microscope's defaults, not real time
    # a simulated protocol keeps the simulator's presets, so a typo stays an error
    data["microscope"] = {"type": "simulated"}
    with pytest.raises(ProtocolError, match=r"screening.channel.*'GFP'.*FITC"):
        sim_config_for(parse_protocol(data, "p.yaml"))


class _JavaLikeCore:
    """A core that only has snake_case names, like the Java bridge's."""

    class _Setting:
        def __init__(self, d, p, v):
            self.d, self.p, self.v = d, p, v

        def get_device_label(self):
            return self.d

        def get_property_name(self):
            return self.p

        def get_property_value(self):
            return self.v

    class _Config:
        def __init__(self, settings):
            self.settings = settings

        def size(self):
            return len(self.settings)

        def get_setting(self, i):
            return _JavaLikeCore._Setting(*self.settings[i])

    class _StrVector:
        def __init__(self, items):
            self.items = items

        def size(self):
            return len(self.items)

        def get(self, i):
            return self.items[i]

    def get_available_config_groups(self):
        return self._StrVector(["Objective", "Channel"])

    def get_available_configs(self, group):
        return self._StrVector({"Objective": ["10x", "60x"], "Channel": ["FITC"]}[group])

    def get_config_data(self, group, preset):
        return self._Config([("Nosepiece", "Label", preset), ("Nosepiece", "Speed", "5")])


def test_corecalls_on_a_snake_case_core():
    core = _JavaLikeCore()
    assert corecalls.presets(core, "Objective") == ["10x", "60x"]
    assert corecalls.presets(core, "Nope") == []
    assert corecalls.preset_properties(core, "Objective", "60x") == [
        ("Nosepiece", "Label", "60x"), ("Nosepiece", "Speed", "5")]
    with pytest.raises(ProtocolError, match=r"screening.objective.*'20x'.*10x, 60x"):
        corecalls.check_preset(core, "Objective", "20x", "screening.objective", "p.yaml")
    with pytest.raises(ProtocolError, match="no config group 'Filters'"):
        corecalls.check_preset(core, "Filters", "x", "screening.channel", "p.yaml")


@pytest.mark.slow
def test_simulated_core_presets_and_positions():
    data = yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    data["triggers"][0]["actions"][1]["preset"] = "GFP-typo"
    proto = parse_protocol(data, "p.yaml", base_dir=REPO / "acquisitions")
    with connect(proto, simulate=True) as scope:
        assert scope.kind == "simulated" and scope.stage_limits.x_um is not None
        with pytest.raises(ProtocolError, match=r"triggers\[0\]\.actions\[1\]\.preset.*GFP-typo"):
            check_presets(proto, scope.core, "p.yaml")
        props = corecalls.preset_properties(scope.core, "Objective", "60x")
        assert props and all(len(t) == 3 for t in props)
        (pos,) = resolve_positions(proto.screening, scope.core)
        assert pos.z_um is not None


def test_demo_cells_can_be_left_out_of_a_simulated_sample():
    data = yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    cfg = sim_config_for(parse_protocol(data, "p.yaml"))
    assert cfg.demo is not None and cfg.demo.n_cells == 3
    data["microscope"]["demo_cells"] = 5
    assert sim_config_for(parse_protocol(data, "p.yaml")).demo.n_cells == 5
    data["microscope"]["demo_cells"] = 0  # only the sample's own divisions
    assert sim_config_for(parse_protocol(data, "p.yaml")).demo is None
