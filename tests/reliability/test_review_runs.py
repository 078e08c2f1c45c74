"""Run folders damaged after the fact (second review): ``report`` and ``repair`` on a run.json
that is not an object (hand-edited, another tool's file) gave an AttributeError traceback;
``report --tiff`` where ``tiff`` is a file, or in a read-only run folder, an OSError one;
``crops --from-run`` of a killed run did not say to repair it."""

from __future__ import annotations

import importlib.util
import json

import pytest

from .conftest import TESTS, CliResult


def _one_line(res: CliResult, *words: str) -> None:
    assert res.code == 2, res.stdout + res.stderr
    assert len(res.error_lines) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def _run(tmp_path, run_json: object):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(run_json))
    (run / "decisions.jsonl").write_text(json.dumps({"event": "screening_done", "frame": 0})
                                         + "\n")
    return run


@pytest.mark.parametrize("run_json", [[1, 2], "text", {"summary": [1], "model": "x",
                                                       "protocol": 3}])
def test_report_reads_past_a_run_json_of_the_wrong_shape(cli, tmp_path, run_json):
    run = _run(tmp_path, run_json)
    res = cli("report", run)
    assert res.code == 0, res.stderr
    assert (run / "report.html").is_file()


@pytest.mark.parametrize("run_json", [[1, 2], {"summary": "running"}])
def test_repair_refuses_a_run_json_of_the_wrong_shape(cli, tmp_path, run_json):
    run = _run(tmp_path, run_json)
    before = (run / "run.json").read_bytes()
    _one_line(cli("repair", run), "run.json", "not an object")
    assert (run / "run.json").read_bytes() == before


def _write_run(run, **kw):
    pytest.importorskip("ndstorage", reason="writing an NDTiff data set needs smartscope[mm]")
    spec = importlib.util.spec_from_file_location("_report_helpers",
                                                  TESTS / "report" / "conftest.py")
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    return helpers.write_run(run, **kw)


def test_report_tiff_where_tiff_is_a_file(cli, tmp_path):
    run = tmp_path / "run"
    _write_run(run, n_screen=2, trigger_at=())
    (run / "tiff").write_text("my notes")
    _one_line(cli("report", run, "--tiff"), "tiff", "not a folder")
    assert (run / "tiff").read_text() == "my notes"


def test_crops_from_a_killed_run_says_to_repair_it(cli, tmp_path):
    """A SIGKILLed run: its data set's index is empty (the writer buffers it) and run.json says
    running (tests/reliability/test_killed_run.py makes one for real)."""
    run = tmp_path / "run"
    _write_run(run, n_screen=3, trigger_at=(), status="running")
    for index in run.glob("**/NDTiff.index"):
        index.write_bytes(b"")
    _one_line(cli("crops", "--from-run", run, "--out", tmp_path / "pool"),
              "no classified nucleus could be matched", f"smartscope repair {run}")
    info = json.loads((run / "run.json").read_text())
    info["summary"]["status"] = "completed"  # closed, yet its index lost: no repair hint
    (run / "run.json").write_text(json.dumps(info))
    res = cli("crops", "--from-run", run, "--out", tmp_path / "pool")
    _one_line(res, "no classified nucleus could be matched")
    assert "repair" not in res.stderr
