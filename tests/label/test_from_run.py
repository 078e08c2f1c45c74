"""`smartscope crops --from-run`: a pool from a run folder (cells.csv + NDTiff images), written here
with the run's own writers (``acquire.sinks.CellsCsv``, ndstorage as pycromanager saves images) from
synthetic frames whose nuclei are known, then labelled through the session."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from smartscope.cli import main
from smartscope.label.session import build_session

CLASSES = ("interphase", "metaphase")
PX_UM = 0.645


def make_run(folder: Path, frames: int = 3, split: bool = False) -> list[tuple[int, float, float]]:
    """A run folder: 3 screening frames at one position, 3 nuclei drifting 3 px a frame, plus one
    follow-up frame; nucleus 2 is bright and predicted metaphase. Returns (frame, y, x).

    ``split``: as runs write them now, the follow-up frame in a data set of its own and each
    cells.csv row naming its image's data set and axes; else as earlier runs did, one data set
    whose images are found by time."""
    ndstorage = pytest.importorskip("ndstorage")
    from smartscope.acquire.sinks import CellsCsv

    folder.mkdir(parents=True)
    ds = ndstorage.NDTiffDataset(str(folder), name="screening" if split else "images",
                                 writable=True, summary_metadata={})
    follow_ds = None
    if split:
        follow_ds = ndstorage.NDTiffDataset(str(folder / "followup_001" / "03_change_interval"),
                                            writable=True, summary_metadata={})
    cells = CellsCsv(folder / "cells.csv", CLASSES)
    yy, xx = np.mgrid[:200, :300]
    truth = []
    for t in range(frames + 1):
        follow = t == frames
        image = np.full((200, 300), 1000.0)
        rows = []
        for k in range(3):
            y, x = 50.0 + 50 * k, 60.0 + 80 * k + 3 * t
            image += (800 + 2000 * (k == 2)) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 60.0)
            p = 0.55 + 0.1 * k if k < 2 else 0.9
            rows.append({"frame": t, "time_s": 2.0 * t + 0.0123, "position": "A1",
                         "mode": "followup" if follow else "screening", "objective": "10x",
                         "channel": "FITC", "pixel_size_um": PX_UM, "y": y, "x": x,
                         "area_um2": 80.0, "phase": CLASSES[k == 2],
                         "track": 1 + (1 - k if t == 2 and k < 2 else k),  # 0, 1 swap at t 2
                         "confidence": p, "probabilities": [1 - p, p] if k == 2 else [p, 1 - p]})
            truth.append((t, y, x))
        target, axes, where = ds, {"time": t}, "images_1"
        if follow_ds is not None:
            target, axes, where = ((follow_ds, {"time": 0, "channel": "FITC"},
                                    "followup_001/03_change_interval") if follow else
                                   (ds, {"time": t, "position": 0, "channel": "FITC"},
                                    "screening_1"))
            rows = [{**r, "dataset": where, "axes": axes} for r in rows]
        # the times of split runs are not used to find images: make them disagree
        ms = 2000.0 * t + 12.3 + (777.0 if follow_ds is not None else 0.0)
        target.put_image(axes, image.astype(np.uint16), {"ElapsedTime-ms": ms,
                                                         "PixelSize_um": PX_UM})
        cells.write(rows)
    for d in (ds, follow_ds):
        if d is not None:
            d.finish()
            d.close()
    cells.close()
    return truth


@pytest.mark.parametrize("split", [True, False], ids=["data-set-per-follow-up", "earlier-run"])
def test_pool_from_a_run_keeps_positions_probabilities_and_time_links(tmp_path, split):
    run = tmp_path / "run"
    truth = make_run(run, split=split)
    pool = tmp_path / "pool"
    assert main(["crops", "--from-run", str(run), "--out", str(pool)]) == 0
    with open(pool / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(truth) == 12
    assert [(int(r["frame"]), float(r["y"]), float(r["x"])) for r in rows] == truth
    assert {r["p_metaphase"] for r in rows if r["phase"] == "metaphase"} == {"0.9"}
    # the bright nucleus is the brightest crop; each crop holds its nucleus at the centre
    bright = [float(r["mean_intensity"]) for r in rows]
    assert all(bright[k] > 2 * bright[k - 1] for k in range(2, 12, 3))
    import tifffile

    crop = tifffile.imread(pool / rows[0]["file"])
    assert crop.dtype == np.uint16 and np.unravel_index(crop.argmax(), crop.shape) in {
        (31, 31), (31, 32), (32, 31), (32, 32)}
    s = build_session(pool, list(CLASSES), tmp_path / "labelled")
    assert s.state()["ordered_by"] == "uncertainty"
    first = s.page(3)["rows"]
    assert {c["id"][-1] for r in first for c in r["cards"]} == {"0"}  # 0.55: least certain
    items = s.pool
    assert items["f00001n002"].previous == "f00000n002" and items["f00001n002"].next == "f00002n002"
    assert items["f00003n001"].previous is None  # the follow-up frame is another source
    # linked by the run's own tracks, not by nearness: the run swapped nuclei 0 and 1 at frame 2
    assert items["f00002n000"].previous == "f00001n001"
    assert items["f00002n001"].previous == "f00001n000"


def test_from_run_errors_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["crops", "--from-run", str(run), "--out", str(tmp_path / "p")]) == 2
    (run / "cells.csv").write_text("frame,time_s,pixel_size_um,y,x,phase,confidence\n")
    assert main(["crops", "--from-run", str(run), "--out", str(tmp_path / "p")]) == 2
    assert main(["crops", "--from-run", str(run), "--out", str(run / "p")]) == 2
    assert main(["crops", "x.tif", "--from-run", str(run), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4
    assert "no cells.csv" in err[0] and "no NDTiff data set" in err[1]
    assert "overlaps the input" in err[2] and "not both" in err[3]
