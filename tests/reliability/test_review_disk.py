"""A full disk during a run (second review): the table files and the run end with one line
naming the folder and what to do (free space, ``smartscope repair``), exit code 2, and the
images saved before stay readable; not the traceback of the first failed write."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from smartscope.acquire.sinks import CellsCsv, DecisionsJsonl
from smartscope.errors import OutputError

from .conftest import base_protocol, write_protocol
from .test_killed_run import SHIPPED, _images_on_disk, _read_all

DEV_FULL = Path("/dev/full")  # the kernel's own full device: every write fails with ENOSPC
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux)")


@needs_dev_full
def test_a_table_on_a_full_disk_is_one_error_naming_the_file(tmp_path):
    (tmp_path / "decisions.jsonl").symlink_to(DEV_FULL)
    sink = DecisionsJsonl(tmp_path / "decisions.jsonl")
    with pytest.raises(OutputError, match=r"decisions.jsonl: cannot be written \(No space"):
        sink.write({"event": "trigger", "frame": 3})
    sink.close()  # never raises: the error that ended the run is the one reported
    (tmp_path / "cells.csv").symlink_to(DEV_FULL)
    with pytest.raises(OutputError, match=r"cells.csv: cannot be written"):
        CellsCsv(tmp_path / "cells.csv", ("a", "b"))


@contextlib.contextmanager
def _small_disk(where: Path, size: str):
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (run as root to test a full disk)")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
def test_a_run_that_fills_its_disk_ends_in_one_line_and_keeps_its_images(cli, tmp_path):
    data = base_protocol(SHIPPED, n_timepoints=60)
    data["triggers"] = []
    proto = write_protocol(tmp_path, data)
    with _small_disk(tmp_path / "disk", "1m") as disk:
        out = disk / "run"
        res = cli("run", proto, "--simulate", "--quiet", "--out", out)
        assert res.code == 2, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "could not be saved" in errors[0], res.stderr
        assert f"smartscope repair {out}" in errors[0]
        assert 'File "' + str(Path(__file__).parents[2] / "smartscope") not in res.stderr
        saved = shutil.copytree(out, tmp_path / "copy")  # space freed
    n = _images_on_disk(saved)
    assert n >= 2
    assert cli("repair", saved).code == 0
    assert len(_read_all(next(saved.glob("screening*")))) == n
