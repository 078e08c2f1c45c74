"""CI smoke runs of the benchmarks: each script's quick mode, as a subprocess, writes its figures.

These check that the scripts still run against the package and report what they promise (median
and spread, machine, versions); they assert nothing about speed (figures from a shared CI
machine mean little). About a minute on an idle 2-core machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"

pytestmark = pytest.mark.slow

_RESULTS: dict[str, dict] = {}


def run_quick(name: str, tmp_path: Path, *args: str, skip_rc: int | None = None,
              ok_rc: tuple[int, ...] = (0,)) -> dict:
    """Run ``benchmarks/<name>.py --quick --json ...``; returns its JSON.

    ``ok_rc``: exit statuses accepted when the JSON was written (a script whose status is its
    verdict against a target).
    """
    script = BENCH / f"{name}.py"
    if not script.is_file():
        pytest.skip(f"benchmarks/{name}.py not written yet")
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(script), *args, "--json", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=540)
    if skip_rc is not None and proc.returncode == skip_rc:
        pytest.skip(f"{name}: input data not available ({proc.stderr.strip()[-200:]})")
    assert proc.returncode in ok_rc, proc.stderr[-3000:]
    assert out.is_file(), f"{name} wrote no JSON ({proc.returncode}): {proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    _RESULTS[name] = result
    return result


def check_common(result: dict) -> None:
    """What every benchmark records: what it measures, machine, versions, a table."""
    assert result["what"]
    m = result["machine"]
    assert m["cpu"] and m["logical_cores"] >= 1 and isinstance(m["cpu_flags"], list)
    assert "numpy" in result["packages"] and "smartscope" in result["packages"]
    assert result["table"], "no table rows"


def check_stats(stats: dict) -> None:
    assert stats["n"] >= 1
    assert 0 < stats["median"] < float("inf")
    assert stats["p5"] <= stats["median"] <= stats["p95"]


def test_frame_speed_quick(tmp_path):
    r = run_quick("frame_speed", tmp_path, "--quick")
    check_common(r)
    res = r["results"]
    for key in ("litert_batched_1t_ms_per_cell", "litert_batched_2t_ms_per_cell",
                "keras_predict_single_ms_per_cell"):
        check_stats(res[key])
    frames = [v for k, v in res.items() if k.startswith("frame ")]
    assert frames
    for part in ("detect", "crop", "classify", "total"):
        check_stats(frames[0][part])


def test_detection_quality(tmp_path):
    r = run_quick("detection_quality", tmp_path, skip_rc=2)  # no quick mode: 20 small frames
    for part in ("all", "inner"):
        assert 0 <= r[part]["precision"] <= 1 and 0 <= r[part]["recall"] <= 1
    assert r["detect_ms_median"] > 0


def test_hook_latency_quick(tmp_path):
    r = run_quick("hook_latency", tmp_path, "--quick")
    check_common(r)
    (size,) = r["settings"]["sizes_px"]
    res = r["results"][f"{size}px_1t"]
    assert res["errors"] == 0
    check_stats(res["latency_ms"])
    for part in ("detect", "crop", "classify", "total", "cpu"):
        check_stats(res["steps_ms"][part])
    assert res["nuclei"]["median"] >= 1


def test_training_time_quick(tmp_path):
    r = run_quick("training_time", tmp_path, "--quick")
    check_common(r)
    res = r["results"]
    check_stats(res["wall_min"])
    run = res["runs"][0]
    assert run["timing"]["epochs"] >= 1 and run["timing"]["step_s"] > 0
    assert sum(run["label_counts"].values()) > 0


def test_soak_quick(tmp_path):
    # exit status 1 is the soak's verdict (latency or memory not steady), not a crash: on a
    # short run on a shared machine it says little; the smoke test checks the figures exist
    r = run_quick("soak", tmp_path, "--quick", ok_rc=(0, 1))
    check_common(r)
    res = r["results"]
    assert res["frames"] >= 1 and res["errors"] == 0
    assert res["rss_growth_mb"] is not None and res["latency_quarters"]


def test_history_quick(tmp_path):
    r = run_quick("history", tmp_path, "--quick", "HEAD", "WORKTREE")
    check_common(r)
    for rev in ("HEAD", "WORKTREE"):
        res = r["results"][rev]
        assert res["nuclei"] >= 1
        for part in ("detect", "crop", "classify"):
            assert min(res[part]["cpu_ms"]) >= 0 and min(res[part]["wall_ms"]) > 0


def test_event_capture_quick(tmp_path):
    """Two short simulated runs of mitosis_zoom.yaml as shipped (tracking + confirm), with the
    model and with the ORACLE classifier, scored against the simulator's truth."""
    r = run_quick("event_capture", tmp_path, "--quick", "--jobs", "2")
    check_common(r)
    res = r["results"]
    assert {(run["variant"], run["classifier"]) for run in res["runs"]} == {
        ("tracking+confirm", "model"), ("tracking+confirm", "oracle")}
    assert all(run["status"] == "completed" and run["capture"] for run in res["runs"])
    for key in ("mitosis_zoom tracking+confirm", "mitosis_zoom tracking+confirm ORACLE"):
        assert res[key]["episodes"] >= 1 and res[key]["runs"] == 1
        assert {"precision", "followup_precision", "recall", "wrong_light_ms"} <= set(res[key])
        # every episode is explained once
        assert sum(res[key]["losses"].values()) == res[key]["episodes"]
    # the runs pool again from the JSON, with the plot, without running anything
    (tmp_path / "again").mkdir()
    again = run_quick("event_capture", tmp_path / "again", "--from-json",
                      str(tmp_path / "event_capture.json"), "--plot", str(tmp_path / "ec.png"))
    for key in ("mitosis_zoom tracking+confirm", "mitosis_zoom tracking+confirm ORACLE"):
        assert {k: again["results"][key][k] for k in ("episodes", "caught", "losses")} == {
            k: res[key][k] for k in ("episodes", "caught", "losses")}
    assert (tmp_path / "ec.png").stat().st_size > 10_000


def test_report_speed_quick(tmp_path):
    r = run_quick("report_speed", tmp_path, "--quick")
    check_common(r)
    res = r["results"]
    check_stats(res["warm_s"])
    assert res["frames"] == 100 and res["triggers"] >= 2
    assert res["images_embedded"] == 2 * res["triggers"] + 2  # two per trigger, two plots
    assert 0 < res["report_kb"] < 1000


def test_run_all_headlines():
    """The summary of run_all reads every JSON the scripts above wrote."""
    if not _RESULTS:
        pytest.skip("no benchmark ran")
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(spec.name, None)
    for bench in mod.BENCHES:
        if bench.name in _RESULTS:
            line = bench.headline(_RESULTS[bench.name])
            assert line and "unavailable" not in line, (bench.name, line)

