"""``smartscope check`` on Micro-Manager's demo devices, through pycromanager's own
``start_headless`` (the demo camera itself, no virtual sample) (slow)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.rig.conftest import REPO
from tests.rig.test_demo_run import _protocol_for

pytestmark = pytest.mark.slow


def _check(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smartscope", "check", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_check_passes_on_the_demo_microscope(mm_demo, tmp_path):
    path = _protocol_for(mm_demo, tmp_path, virtual_sample=None)
    proc = _check(path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert "0.5 um/px from Micro-Manager (Res20x)" in table["pixel size 20X"]
    assert "0.25 um/px from Micro-Manager (Res40x)" in table["pixel size 40X"]
    assert table["focus device"].split()[-1] == "Z" and table["camera"].split()[-1] == "Camera"
    assert "512 x 512 uint16" in table["test snap"] and "ok" in table["one camera"]
    assert "2 s" in table["screening interval"] and "ms hook" in table["screening interval"]
    assert "ready to run on the headless microscope" in proc.stdout


def test_check_names_the_blockers_and_exits_non_zero(mm_demo, tmp_path):
    path = _protocol_for(mm_demo, tmp_path, virtual_sample=None,
                         stage_limits={"x_um": [100, 200], "y_um": [-1, 1], "z_um": [-1, 1]})
    data = yaml.safe_load(path.read_text())
    data["triggers"][0]["actions"][0]["objective"] = "60X"  # not on the demo turret
    path.write_text(yaml.safe_dump(data))
    proc = _check(path)
    assert proc.returncode == 2
    assert "BLOCKER" in proc.stdout and "'60X' is not a preset" in proc.stdout
    assert "x=0 outside microscope.stage_limits" in proc.stdout.replace("x=-0", "x=0")
    assert "2 blocker(s)" in proc.stderr or "blocker(s)" in proc.stderr


def test_a_configuration_that_does_not_load_is_one_line(mm_demo, tmp_path):
    """pycromanager's start_headless error spans several lines; the command prints one."""
    cfg = tmp_path / "broken.cfg"
    lines = (mm_demo / "MMConfig_demo.cfg").read_text().splitlines()
    cfg.write_text("\n".join([*lines[:20], "Property,Camera,NoSuchProp,5"]) + "\n")
    data = yaml.safe_load(_protocol_for(mm_demo, tmp_path, virtual_sample=None).read_text())
    data["microscope"]["config_file"] = str(cfg)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = _check(path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.strip()][-1:]
    assert errors[0].startswith("error: Micro-Manager in ") and "NoSuchProp" in errors[0]
    assert errors[0].endswith("check that the configuration loads in the Micro-Manager app")
