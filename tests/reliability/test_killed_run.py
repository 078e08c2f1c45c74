"""A run killed with SIGKILL (defect 5 of the fault review): a real ``smartscope run`` on the
simulated microscope, killed by a real SIGKILL while it acquires; ``smartscope repair`` then makes
its data set readable with pycromanager's reader and marks the run ``killed``."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from smartscope.acquire.repair import IndexEntry, scan_tiff

from .conftest import base_protocol, write_protocol

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "hela_h2b_5class"


def _images_on_disk(out: Path) -> int:
    """Complete images in the data set's TIFF files (pycromanager flushes each one)."""
    return sum(len(scan_tiff(f)[0]) for f in out.glob("screening*/*.tif"))


def _read_all(folder: Path) -> list[np.ndarray]:
    from ndstorage import Dataset

    ds = Dataset(str(folder))
    try:
        return [np.asarray(ds.read_image(**axes)) for axes in ds.get_image_coordinates_list()]
    finally:
        ds.close()


@pytest.mark.slow
def test_sigkill_then_repair(tmp_path, cli):
    data = base_protocol(SHIPPED, n_timepoints=500)
    data["triggers"] = []
    proto = write_protocol(tmp_path, data)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "smartscope", "run", str(proto), "--simulate",
                             "--quiet", "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while _images_on_disk(out) < 4:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run did not start acquiring in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (ds,) = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("screening")]
    info = json.loads((out / "run.json").read_text())
    assert info["summary"]["status"] == "running"  # what the killed run left: not honest
    on_disk = sum(len(scan_tiff(f)[0]) for f in ds.glob("*.tif"))
    assert on_disk >= 4
    assert len(_read_all(ds)) < on_disk  # the reader does not see the images the TIFF holds

    res = cli("repair", out)
    assert res.code == 0, res.stderr
    assert "killed" in res.stdout and f"{on_disk} images" in res.stdout
    images = _read_all(ds)
    assert len(images) == on_disk
    plain = []
    for f in sorted(ds.glob("*.tif")):
        with tifffile.TiffFile(f) as tif:  # the page chain is terminated: plain TIFF reads too
            plain += [p.asarray() for p in tif.pages]
    assert len(plain) == on_disk
    for a, b in zip(images, plain, strict=True):
        assert a.dtype == np.uint16 and np.array_equal(a, b)
    info = json.loads((out / "run.json").read_text())
    assert info["summary"]["status"] == "killed" and info["summary"]["frames"] == on_disk
    assert info["repaired"]["images"] == on_disk
    # a second repair changes nothing (the TIFF is preallocated, sparse, 4 GB: compare the
    # part that holds the images)
    def state() -> list[bytes]:
        end = max(e.metadata_offset + e.metadata_length for e in scan_tiff(tif)[0])
        with open(tif, "rb") as fh:
            return [fh.read(end), (ds / "NDTiff.index").read_bytes(),
                    (out / "run.json").read_bytes()]

    (tif,) = ds.glob("*.tif")
    before = state()
    assert cli("repair", out).code == 0
    assert state() == before


def test_index_entries_are_in_ndstorage_format():
    from ndstorage.ndtiff_index import NDTiffIndexEntry

    e = IndexEntry({"time": 3, "channel": "FITC"}, "x_NDTiffStack.tif", 466, 256, 128, 1,
                   131538, 360)
    pos, axes, parsed = NDTiffIndexEntry.unpack_single_index_entry(e.to_bytes())
    assert pos == len(e.to_bytes()) and axes == {"time": 3, "channel": "FITC"}
    assert (parsed.pix_offset, parsed.image_width, parsed.image_height, parsed.pixel_type,
            parsed.metadata_offset, parsed.metadata_length, parsed.filename) == \
        (466, 256, 128, 1, 131538, 360, "x_NDTiffStack.tif")


def test_a_torn_last_page_is_left_out(tmp_path):
    """A page whose pixels were not all written (cut short here, as a power cut would) is not
    listed; the pages before it are."""
    src = tmp_path / "a_NDTiffStack.tif"
    # a real NDTiff file written by ndstorage's own writer
    from ndstorage import NDTiffDataset

    ds = NDTiffDataset(str(tmp_path / "ds"), name="a", writable=True)
    ds.initialize({})
    for t in range(3):
        ds.put_image({"time": t}, np.full((32, 48), t, np.uint16), {"Axes": {"time": t}})
    ds.finish()
    (f,) = (tmp_path / "ds").rglob("*.tif")
    entries, _ = scan_tiff(f)
    assert [e.axes for e in entries] == [{"time": 0}, {"time": 1}, {"time": 2}]
    cut = entries[2].pixel_offset + 100
    src.write_bytes(f.read_bytes()[:cut])
    torn, dangling = scan_tiff(src)
    assert [e.axes for e in torn] == [{"time": 0}, {"time": 1}]
    assert dangling is not None
    (ptr,) = struct.unpack("<I", src.read_bytes()[dangling:dangling + 4])
    assert ptr > entries[1].metadata_offset


def test_repair_of_a_folder_without_run_json(cli, tmp_path):
    res = cli("repair", tmp_path)
    assert res.code == 2 and "run.json" in res.stderr and len(res.error_lines) == 1


def _start_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    data = base_protocol(SHIPPED, n_timepoints=500)
    data["triggers"] = []
    proto = write_protocol(tmp_path, data)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "smartscope", "run", str(proto), "--simulate",
                             "--quiet", "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


def _wait_for(proc: subprocess.Popen, ready, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 180
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.05)


def _ended_honestly(proc: subprocess.Popen, out: Path) -> dict:
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    info = json.loads((out / "run.json").read_text())
    folders = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("screening")]
    readable = _read_all(folders[0]) if folders else []
    assert info["summary"]["status"] == "interrupted", info["summary"]
    assert info["summary"]["frames"] == len(readable)
    on_disk = sum(len(scan_tiff(f)[0]) for f in out.glob("screening*/*.tif"))
    assert len(readable) == on_disk  # closed: the index lists every image in the TIFF
    return info


@pytest.mark.slow
def test_a_second_ctrl_c_does_not_abandon_the_data_set(tmp_path):
    proc, out = _start_run(tmp_path)
    _wait_for(proc, lambda: _images_on_disk(out) >= 3, "3 images")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    info = _ended_honestly(proc, out)
    assert info["summary"]["frames"] >= 3


@pytest.mark.slow
def test_ctrl_c_during_start_up_is_recorded_as_interrupted(tmp_path):
    proc, out = _start_run(tmp_path)
    _wait_for(proc, lambda: (out / "run.json").is_file(), "run.json")
    proc.send_signal(signal.SIGINT)
    _ended_honestly(proc, out)
