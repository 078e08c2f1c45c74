"""ImageJ hyperstacks of a run: one per screening position and per follow-up part, calibrated."""

from __future__ import annotations

import pytest

from smartscope.cli import main
from smartscope.report.export import export_tiffs
from tests.report.conftest import FOLLOW_PS, SCREEN_PS


def _calibration(path):
    import tifffile

    with tifffile.TiffFile(path) as t:
        x_res = t.pages[0].tags["XResolution"].value
        return t.series[0].shape, x_res[1] / x_res[0], t.imagej_metadata


def test_export_regroups_screening_and_each_followup(tmp_path, make_run):
    make_run(tmp_path / "run", n_screen=5, trigger_at=(1, 3), zstack=3)
    stacks = {s.path.name: s for s in export_tiffs(tmp_path / "run")}
    assert sorted(stacks) == ["followup_001.tif", "followup_001_zstack1.tif", "followup_002.tif",
                              "followup_002_zstack1.tif", "screening_0.tif"]
    shape, ps, md = _calibration(tmp_path / "run" / "tiff" / "screening_0.tif")
    assert shape == (5, 256, 256) and ps == pytest.approx(SCREEN_PS, rel=1e-4)
    assert md["unit"] == "um" and md["finterval"] == pytest.approx(2.65)  # 2 or 3.3 s
    shape, ps, md = _calibration(tmp_path / "run" / "tiff" / "followup_002.tif")
    assert shape == (2, 256, 256) and ps == pytest.approx(FOLLOW_PS, rel=1e-4)
    assert md["finterval"] == pytest.approx(0.5)
    shape, ps, md = _calibration(tmp_path / "run" / "tiff" / "followup_001_zstack1.tif")
    assert shape == (3, 256, 256) and md["spacing"] == pytest.approx(0.75)
    assert stacks["followup_001_zstack1.tif"].shape == (1, 3, 1, 256, 256)


def test_export_cli_links_the_stacks_from_the_report(tmp_path, make_run, capsys):
    make_run(tmp_path / "run", trigger_at=(2,))
    assert main(["report", str(tmp_path / "run"), "--tiff", "--no-screening-tiff"]) == 0
    out = capsys.readouterr().out
    assert "followup_001.tif" in out and "screening" not in out
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<a href='tiff/followup_001.tif'>" in page
    (tmp_path / "run" / "tiff" / "followup_001.tif").write_bytes(b"not ours")
    assert main(["report", str(tmp_path / "run"), "--tiff"]) == 2  # never replaces a foreign file
    assert (tmp_path / "run" / "tiff" / "followup_001.tif").read_bytes() == b"not ours"


def test_reading_a_run_back_with_ndstorage(tmp_path, make_run):
    """The recipe of docs/data.md: frames.csv names each image's data set and axes."""
    import csv
    import json

    from ndstorage import Dataset

    folder = tmp_path / "run"
    make_run(folder, trigger_at=(1,))
    rows = list(csv.DictReader((folder / "frames.csv").open()))
    follow = next(r for r in rows if r["mode"] == "follow")
    ds = Dataset(str(folder / follow["dataset"]))
    try:
        axes = json.loads(follow["axes"])
        image = ds.read_image(**axes)
        md = ds.read_metadata(**axes)
        screening = ds.as_array(axes=["time"], mode="screen", position=0, z=0, channel="FITC")
        assert screening.shape == (6, 256, 256)
    finally:
        ds.close()
    assert image.shape == (256, 256) and md["PixelSize_um"] == pytest.approx(FOLLOW_PS)
