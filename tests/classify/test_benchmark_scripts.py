"""Detection quality on the real HeLa masks, through its benchmark script (skips without them).

The other benchmark scripts' quick modes run in tests/benchmarks/test_quick.py."""

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
def test_detection_quality_on_hela(repo_root, hela_frames, tmp_path, capsys):
    bench = _load(repo_root, "detection_quality")
    out = tmp_path / "dq.json"
    assert bench.main(["--data", str(hela_frames.parent), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["inner"]["recall"] >= 0.9 and data["inner"]["precision"] >= 0.9
    assert "precision" in capsys.readouterr().out
