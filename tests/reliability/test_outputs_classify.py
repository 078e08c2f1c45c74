"""The output rule for ``smartscope classify`` (defects 1, 4, 9, 14 of the fault review): never
onto an input or a foreign file, temporary name then move, no partial or empty leftovers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from smartscope.outputs import atomic_file, check_file_target, made_dirs

from .conftest import CliResult


def _frame(n: int = 4, seed: int = 0) -> np.ndarray:
    """Bright discs of 18 um on a 0.645 um/px frame (as the classify tests draw them)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:120, 0:160] * 0.645
    img = 33000 + rng.normal(0, 5, yy.shape)
    for i in range(n):
        cy, cx = 25 + 35 * (i // 3), 25 + 30 * (i % 3)
        img += 500 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - 9) / 1.0))
    return img.astype(np.uint16)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "frame.tif"
    tifffile.imwrite(path, _frame())
    return path


def _classify(cli, image, bundle, *extra) -> CliResult:
    return cli("classify", image, "--model", bundle, "--pixel-size-um", "0.645", *extra)


def _one_line(res: CliResult, *words: str) -> None:
    assert res.code == 2, res.stderr
    assert len(res.error_lines) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


@pytest.mark.parametrize("option", ["-o", "--overlay"])
def test_output_naming_the_input_is_refused_and_the_input_kept(cli, tiny_bundle, tmp_path,
                                                               option):
    from skimage.io import imsave

    image = tmp_path / "frame.png"  # a PNG input, so that --overlay may name it too
    imsave(image, _frame(), check_contrast=False)
    before = image.read_bytes()
    extra = [option, image] if option == "-o" else ["-o", tmp_path / "c.csv", option, image]
    res = _classify(cli, image, tiny_bundle, *extra)
    _one_line(res, option, "input", str(image))
    assert image.read_bytes() == before


def test_input_reached_through_a_link_is_refused(cli, tiny_bundle, image, tmp_path):
    link = tmp_path / "link.csv"
    os.symlink(image, link)
    before = image.read_bytes()
    _one_line(_classify(cli, image, tiny_bundle, "-o", link), "input")
    assert image.read_bytes() == before


def test_a_failing_classify_keeps_an_earlier_csv(cli, tiny_bundle, image, tmp_path):
    out = tmp_path / "cells.csv"
    assert _classify(cli, image, tiny_bundle, "-o", out).code == 0
    earlier = out.read_bytes()
    assert earlier.count(b"\n") > 1
    bad = tmp_path / "saturated.tif"  # readable; fails in detection, after the CSV is begun
    tifffile.imwrite(bad, np.full((120, 160), 65535, np.uint16))
    res = _classify(cli, image, tiny_bundle, bad, "-o", out)
    assert res.code == 2
    assert out.read_bytes() == earlier
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_a_foreign_file_is_not_replaced(cli, tiny_bundle, image, tmp_path):
    out = tmp_path / "notes.csv"
    out.write_text("my own notes\n")
    _one_line(_classify(cli, image, tiny_bundle, "-o", out), "not written by this command")
    assert out.read_text() == "my own notes\n"
    png = tmp_path / "holiday.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not an overlay")
    res = _classify(cli, image, tiny_bundle, "-o", tmp_path / "c.csv", "--overlay", png)
    _one_line(res, "--overlay", "not written by this command")
    assert png.read_bytes().endswith(b"not an overlay")


def test_an_earlier_overlay_is_replaced(cli, tiny_bundle, image, tmp_path):
    png = tmp_path / "o.png"
    args = ("-o", tmp_path / "c.csv", "--overlay", png)
    assert _classify(cli, image, tiny_bundle, *args).code == 0
    assert _classify(cli, image, tiny_bundle, *args).code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("where", ["folder", "under_a_file", "read_only"])
def test_unwritable_outputs_are_one_line_errors(cli, tiny_bundle, image, tmp_path, where):
    if where == "folder":
        target = tmp_path / "adir"
        target.mkdir()
    elif where == "under_a_file":
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "cells.csv"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes in read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "cells.csv"
    try:
        _one_line(_classify(cli, image, tiny_bundle, "-o", target), "-o", str(target))
    finally:
        if where == "read_only":
            ro.chmod(0o700)


def test_unknown_overlay_extension(cli, tiny_bundle, image, tmp_path):
    res = _classify(cli, image, tiny_bundle, "-o", tmp_path / "c.csv", "--overlay",
                    tmp_path / "o.xyz")
    _one_line(res, "--overlay", ".png")


def test_a_failed_command_leaves_no_empty_out_folder(cli, tiny_bundle, tmp_path):
    bad = tmp_path / "saturated.tif"  # readable; fails in detection
    tifffile.imwrite(bad, np.full((120, 160), 65535, np.uint16))
    res = cli("classify", bad, "--model", tiny_bundle, "--pixel-size-um", "0.645", "-o",
              tmp_path / "new" / "deep" / "c.csv")
    assert res.code == 2
    assert not (tmp_path / "new").exists()


# --- the helper itself -------------------------------------------------------------------------


def test_atomic_file_moves_into_place_only_when_complete(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed half-way")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with atomic_file(target) as tmp:
        assert tmp != target and tmp.suffix == ".txt"
        tmp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"


def test_made_dirs_removes_only_what_it_created_and_only_if_empty(tmp_path):
    with pytest.raises(RuntimeError), made_dirs(tmp_path / "a" / "b"):
        raise RuntimeError
    assert not (tmp_path / "a").exists()
    (tmp_path / "keep").mkdir()
    with pytest.raises(RuntimeError), made_dirs(tmp_path / "keep" / "x") as d:
        (d / "f").write_text("result")
        raise RuntimeError
    assert (tmp_path / "keep" / "x" / "f").exists()


def test_check_file_target_refuses_the_same_file_by_another_name(tmp_path):
    src = tmp_path / "in.tif"
    src.write_bytes(b"data")
    from smartscope.errors import OutputError

    with pytest.raises(OutputError, match="input"):
        check_file_target(tmp_path / "." / "in.tif", option="-o", inputs=[src])


def test_check_file_target_refuses_a_read_only_file_even_for_root(tmp_path):
    """A file marked read-only (no write bit) is someone's protection: os.access lets root
    replace it, the mode does not."""
    from smartscope.errors import OutputError

    out = tmp_path / "p.yaml"
    out.write_text("x: 1\n")
    out.chmod(0o444)
    with pytest.raises(OutputError, match="read-only"):
        check_file_target(out, option="--write")
    out.chmod(0o644)
    assert check_file_target(out, option="--write") == out
