"""The output rule for ``run`` and ``simulate`` (defects 4, 9, 14 of the fault review): a run
folder must be new or empty (never one holding someone's ``cells.csv``), unwritable places are
one-line errors, and a run refused before it starts leaves no folder behind."""

from __future__ import annotations

import pytest

from .conftest import CliResult, base_protocol, copy_bundle, write_protocol


def _one_line(res: CliResult, *words: str) -> None:
    assert res.code == 2, res.stderr
    assert len(res.error_lines) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def _run(cli, tmp_path, bundle, out):
    proto = write_protocol(tmp_path / "p", base_protocol(bundle))
    return cli("run", proto, "--simulate", "--quiet", "--out", out)


def test_run_out_with_files_it_did_not_write_is_refused(cli, tiny_bundle, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "cells.csv").write_text("precious\n")
    (out / "decisions.jsonl").write_text("{}\n")
    _one_line(_run(cli, tmp_path, tiny_bundle, out), str(out), "did not write")
    assert (out / "cells.csv").read_text() == "precious\n"
    assert (out / "decisions.jsonl").read_text() == "{}\n"


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_run_out_in_an_impossible_place(cli, tiny_bundle, tmp_path, where):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "run"
    _one_line(_run(cli, tmp_path, tiny_bundle, out), "--out", str(out))
    assert (tmp_path / "f").read_text() == "x"


def test_a_run_refused_before_it_starts_leaves_no_folder(cli, tiny_bundle, tmp_path):
    bad = copy_bundle(tiny_bundle, tmp_path / "bad",  # 4 classes, the model has 3 outputs
                      {"classes": ["interphase", "metaphase", "anaphase", "telophase"]})
    out = tmp_path / "new" / "run"
    res = _run(cli, tmp_path, bad, out)
    assert res.code == 2 and len(res.error_lines) == 1, res.stderr
    assert not out.exists()


@pytest.mark.parametrize("case", ["folder", "under_a_file", "same_as_png"])
def test_simulate_outputs_in_impossible_places(cli, tmp_path, case):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    args = {"folder": ["--snap", tmp_path / "d"],
            "under_a_file": ["--snap", tmp_path / "f" / "snap.tif"],
            "same_as_png": ["--snap", tmp_path / "s.tif", "--png", tmp_path / "s.tif"]}[case]
    res = cli("simulate", *args, "--sensor-px", "64")
    _one_line(res, str(args[1]))
    assert (tmp_path / "f").read_text() == "x"


def test_simulate_writes_complete_files_only(cli, tmp_path):
    res = cli("simulate", "--snap", tmp_path / "new" / "s.tif", "--png", tmp_path / "s.png",
              "--truth", tmp_path / "t.csv", "--sensor-px", "64")
    assert res.code == 0, res.stderr
    names = sorted(p.name for p in tmp_path.rglob("*"))
    assert names == ["new", "s.png", "s.tif", "t.csv"]
