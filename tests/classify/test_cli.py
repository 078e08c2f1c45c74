"""``smartscope classify``: CSV rows per nucleus, frame column for stacks, overlays, errors."""

from __future__ import annotations

import csv

import numpy as np
import tifffile

from smartscope.cli import main

from .conftest import CLASSES
from .test_frame import _frame


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_stack_and_single_frame_to_csv_with_overlays(int8_bundle, tmp_path, capsys):
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([_frame(6, seed=1), _frame(4, seed=2)]))
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, _frame(3, seed=3))
    out = tmp_path / "out" / "cells.csv"
    code = main(["classify", str(stack), str(single), "--model", str(int8_bundle),
                 "--pixel-size-um", "0.645", "-o", str(out), "--overlay", str(tmp_path / "o.png")])
    assert code == 0, capsys.readouterr().err
    rows = _read(out)
    assert [(r["image"], r["frame"]) for r in rows].count(("stack.tif", "0")) == 6
    assert [(r["image"], r["frame"]) for r in rows].count(("stack.tif", "1")) == 4
    assert [r["image"] for r in rows].count("single.tif") == 3
    assert list(rows[0])[:9] == ["image", "frame", "cell", "y", "x", "area_um2", "phase",
                                 "confidence", "touches_edge"]
    assert list(rows[0])[9:] == [f"p_{c}" for c in CLASSES]
    for r in rows:
        assert r["phase"] in CLASSES and 0 <= float(r["confidence"]) <= 1
    pngs = sorted(p.name for p in tmp_path.glob("o-*.png"))
    assert pngs == ["o-single-f000.png", "o-stack-f000.png", "o-stack-f001.png"]
    assert (tmp_path / "o-stack-f000.png").read_bytes()[:4] == b"\x89PNG"
    assert "13 nuclei in 3 frames" in capsys.readouterr().out


def test_single_frame_overlay_uses_the_given_name(int8_bundle, tmp_path):
    img = tmp_path / "a.tif"
    tifffile.imwrite(img, _frame(2))
    overlay = tmp_path / "overlay.png"
    assert main(["classify", str(img), "--model", str(int8_bundle), "-o",
                 str(tmp_path / "c.csv"), "--overlay", str(overlay)]) == 0
    assert overlay.is_file()


def test_missing_bundle_is_one_line_error(tmp_path, capsys):
    img = tmp_path / "a.tif"
    tifffile.imwrite(img, _frame(1))
    code = main(["classify", str(img), "--model", str(tmp_path / "nope"), "-o",
                 str(tmp_path / "c.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "bundle folder not found" in err


def test_bad_pixel_size_and_missing_image(int8_bundle, tmp_path, capsys):
    assert main(["classify", str(tmp_path / "none.tif"), "--model", str(int8_bundle)]) == 2
    assert "not found" in capsys.readouterr().err
    img = tmp_path / "a.tif"
    tifffile.imwrite(img, _frame(1))
    assert main(["classify", str(img), "--model", str(int8_bundle),
                 "--pixel-size-um", "-1"]) == 2
    assert "--pixel-size-um -1" in capsys.readouterr().err


def test_pixel_size_read_from_imagej_tiff(tmp_path):
    from smartscope.vision.io import tiff_pixel_size_um

    path = tmp_path / "px.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), imagej=True,
                     resolution=(1 / 0.5, 1 / 0.5), metadata={"unit": "um"})
    assert abs(tiff_pixel_size_um(path) - 0.5) < 1e-6
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((8, 8), np.uint16))
    assert tiff_pixel_size_um(plain) is None
    assert tiff_pixel_size_um(tmp_path / "x.png") is None
