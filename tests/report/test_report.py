"""report.html from run folders: complete, interrupted, earlier layout, no trigger, not a run."""

from __future__ import annotations

import json
import re

import pytest

from smartscope.cli import main
from smartscope.report import capture_scores, load_run, write_report
from tests.report.conftest import decisions_of


def _images(page: str) -> list[str]:
    return re.findall(r"<img [^>]*src='([^']*)'", page)


def _assert_self_contained(page: str) -> None:
    assert all(src.startswith("data:image/png;base64,") for src in _images(page))
    assert "<link" not in page and "src='http" not in page and "url(" not in page
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"href='(https?:|/)", page)  # links are relative


def test_report_of_a_run_shows_every_trigger_with_thumbnails(tmp_path, make_run):
    run = make_run(tmp_path / "run", n_screen=6, trigger_at=(1, 4))
    path = write_report(tmp_path / "run")
    page = path.read_text()
    _assert_self_contained(page)
    cards = re.findall(r"<div class='trigger' id='trigger-(\d+)' data-frame='(\d+)'>", page)
    assert [int(f) for _, f in cards] == run["triggers"]
    # per trigger: the screening crop and the first follow-up frame; plus timeline and latency
    assert len(_images(page)) == 2 * len(run["triggers"]) + 2
    assert "first follow-up frame" in page and "nucleus found 0.2 um from the centre" in page
    assert "track</td><td>7" in page and "0.930" in page and "150 ms" in page
    assert "centre_on_cell (objective 60x)" in page
    assert "<a href='images_1/'>" in page and "<a href='frames.csv'>" in page
    assert "10 images (every image the hook decided on)" in page
    assert "id='no-problems'" in page
    assert path.stat().st_size < 200_000


def test_report_of_an_earlier_run_matches_images_by_time(tmp_path, make_run):
    """A run of an earlier version: no frames.csv; the images are found by their time stamps."""
    run = make_run(tmp_path / "old", trigger_at=(3,), new_layout=False)
    page = write_report(tmp_path / "old").read_text()
    assert len(re.findall(r"class='trigger'", page)) == 1
    assert len(_images(page)) == 4  # both thumbnails were found without frames.csv
    assert f"data-frame='{run['triggers'][0]}'" in page
    assert "this run kept no per-image latency" in page


def test_report_of_an_interrupted_run_with_torn_lines(tmp_path, make_run):
    folder = tmp_path / "cut"
    make_run(folder, trigger_at=(2,), status="running")
    with (folder / "decisions.jsonl").open("a") as f:
        f.write('{"frame": 9, "event": "tri')  # the process died mid-line
    with (folder / "cells.csv").open("a") as f:
        f.write("9,1.5,A1,scr")
    page = write_report(folder).read_text()
    assert "ended abruptly" in page
    assert "unreadable lines</td><td>2" in page
    assert len(re.findall(r"class='trigger'", page)) == 1


def test_report_without_trigger_and_without_run_json(tmp_path, make_run):
    make_run(tmp_path / "quiet", trigger_at=(), run_json=False)
    page = write_report(tmp_path / "quiet").read_text()
    assert "id='no-triggers'" in page and "class='trigger'" not in page
    assert "No run.json" in page
    assert len(_images(page)) == 2  # timeline and latency


def test_report_lists_refusals_and_errors(tmp_path, make_run):
    folder = tmp_path / "run"
    make_run(folder, trigger_at=())
    with (folder / "decisions.jsonl").open("a") as f:
        f.write('{"frame": 3, "time_s": 8.0, "event": "error", "where": "classify", '
                '"error": "ValueError: bad frame <b>", "on_error": "continue"}\n')
        f.write('{"frame": 4, "time_s": 10.0, "event": "trigger", "trigger": "t", '
                '"followup": 1, "cells": [{"y_px": 1, "x_px": 2, "phase": "metaphase", '
                '"confidence": 0.9}], "refused": "x 9000 um outside the stage limits"}\n')
    page = write_report(folder).read_text()
    assert "Refusals and errors (2)" in page
    assert "ValueError: bad frame &lt;b&gt;" in page  # escaped
    assert "trigger refused" in page and "outside the stage limits" in page


def test_report_shows_capture_scores_when_the_run_has_them(tmp_path, make_run):
    scores = {"metaphase_zoom": {"triggers": 4, "right": 3, "precision": 0.75,
                                 "followups": 4, "followups_right": 3,
                                 "followup_precision": 0.75, "episodes": 5, "caught": 2,
                                 "recall": 0.4, "wrong_time_s": 3.5}}
    run = make_run(tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    info["summary"]["event_capture"] = scores  # where a simulated or replayed run writes them
    (tmp_path / "run" / "run.json").write_text(json.dumps(info))
    assert run["triggers"] and capture_scores(info) == scores
    assert capture_scores({"summary": {"x": 1}}) is None
    assert capture_scores({"capture": scores}) is None  # only the run's own place counts
    page = write_report(tmp_path / "run").read_text()
    assert "Event capture against the ground truth" in page
    assert "75 % (3/4)" in page and "40 % (2/5)" in page


def test_load_run_counts_phases_per_screening_frame(tmp_path, make_run):
    make_run(tmp_path / "run", n_screen=3, trigger_at=(1,))
    rec = load_run(tmp_path / "run")
    assert sorted(rec.phase_counts) == [0, 1, 4]
    assert rec.phase_counts[1]["metaphase"] == 1 and rec.phase_counts[0]["prometaphase"] == 1
    assert rec.frames[2].axes == {"mode": "follow", "time": 1, "position": 0, "z": 0,
                                  "channel": "FITC"}
    assert [d["event"] for d in decisions_of(tmp_path / "run")] == [
        "trigger", "return", "screening_done"]


def test_cli_report(tmp_path, make_run, capsys):
    make_run(tmp_path / "run")
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "report.html" in capsys.readouterr().out


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_cli_report_on_a_folder_that_is_not_a_run(tmp_path, capsys, what):
    folder = tmp_path / "x"
    if what == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("hello")
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(folder) in err
    assert "Traceback" not in err


def test_report_never_replaces_a_page_it_did_not_write(tmp_path, make_run, capsys):
    make_run(tmp_path / "run")
    (tmp_path / "run" / "report.html").write_text("<html>my own notes</html>")
    assert main(["report", str(tmp_path / "run")]) == 2
    assert "was not written by this command" in capsys.readouterr().err
    assert "my own notes" in (tmp_path / "run" / "report.html").read_text()
    (tmp_path / "run" / "report.html").unlink()
    write_report(tmp_path / "run")
    write_report(tmp_path / "run")  # its own page is replaced
