"""The classifier's benchmark scripts run end to end (small sizes; figures not checked)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest


def _load(repo_root, name):
    path = repo_root / "benchmarks" / f"{name}.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.mark.slow
def test_frame_speed_quick(repo_root, int8_bundle, tmp_path, capsys):
    bench = _load(repo_root, "frame_speed")
    out = tmp_path / "fs.json"
    assert bench.main(["--quick", "--no-keras", "--side", "512", "--repeats", "1",
                       "--warmup", "0", "--bundle", str(int8_bundle), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["benchmark"] == "frame_speed" and data["machine"]["cpu"]
    whats = [row["what"] for row in data["table"]]
    assert any("1 thread" in w for w in whats) and any("512px" in w for w in whats)
    assert "ms/cell" in capsys.readouterr().out


@pytest.mark.slow
def test_detection_quality_on_hela(repo_root, hela_frames, tmp_path, capsys):
    bench = _load(repo_root, "detection_quality")
    out = tmp_path / "dq.json"
    assert bench.main(["--data", str(hela_frames.parent), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["inner"]["recall"] >= 0.9 and data["inner"]["precision"] >= 0.9
    assert "precision" in capsys.readouterr().out
