"""Images, model cards, crops folders and checkpoints from the fault review (defects 9, 12, 13,
14): each is refused (or warned about) in one line naming the file, the frame or the field."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from .conftest import CliResult, copy_bundle
from .test_outputs_classify import _frame

REPO = Path(__file__).resolve().parents[2]


def _one_line(res: CliResult, *words: str) -> None:
    assert res.code == 2, res.stdout + res.stderr
    assert len(res.error_lines) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def _classify(cli, tmp_path, bundle, *images, px="0.645", extra=()):
    return cli("classify", *images, "--model", bundle, "--pixel-size-um", px,
               "-o", tmp_path / "c.csv", *extra)


def test_a_folder_given_as_image(cli, tiny_bundle, tmp_path):
    (tmp_path / "frames").mkdir()
    _one_line(_classify(cli, tmp_path, tiny_bundle, tmp_path / "frames"), "is a folder")


def test_a_one_pixel_image(cli, tiny_bundle, tmp_path):
    tifffile.imwrite(tmp_path / "dot.tif", np.ones((1, 1), np.uint16))
    _one_line(_classify(cli, tmp_path, tiny_bundle, tmp_path / "dot.tif"), "1 x 1 px",
              "too small")


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_frame_named_with_file_and_frame(cli, tiny_bundle, tmp_path, bad):
    stack = np.stack([_frame(seed=s) for s in range(4)]).astype(np.float32)
    stack[2, 5, 5] = np.nan if bad == "nan" else np.inf
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    _one_line(_classify(cli, tmp_path, tiny_bundle, tmp_path / "s.tif"), "s.tif", "frame 2",
              "NaN or infinite")


def test_a_saturated_frame_is_named_with_file_and_frame(cli, tiny_bundle, tmp_path):
    stack = np.stack([_frame(seed=0), np.full((120, 160), 65535, np.uint16)])
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    _one_line(_classify(cli, tmp_path, tiny_bundle, tmp_path / "s.tif"), "s.tif", "frame 1",
              "saturated")


def test_planar_rgb_tiff_is_not_a_stack(cli, tiny_bundle, tmp_path):
    rgb = np.stack([_frame(seed=s) for s in range(3)])
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb", planarconfig="separate")
    _one_line(_classify(cli, tmp_path, tiny_bundle, tmp_path / "rgb.tif"), "colour TIFF")


def test_jpeg_input_warns(cli, tiny_bundle, tmp_path, caplog):
    from skimage.io import imsave

    imsave(tmp_path / "f.jpg", (_frame() // 256).astype(np.uint8), check_contrast=False)
    with caplog.at_level(logging.WARNING):
        res = _classify(cli, tmp_path, tiny_bundle, tmp_path / "f.jpg")
    assert res.code == 0, res.stderr
    assert any("lossy" in r.getMessage() and "f.jpg" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("px", "diameter", "words"), [
    ("100", None, "too small"), ("0.645", "1e6", "wider than the frame"),
    ("1e-6", None, "wider than the frame")])
def test_absurd_pixel_size_or_diameter(cli, tiny_bundle, tmp_path, px, diameter, words):
    tifffile.imwrite(tmp_path / "f.tif", _frame())
    extra = ("--diameter-um", diameter) if diameter else ()
    _one_line(_classify(cli, tmp_path, tiny_bundle, tmp_path / "f.tif", px=px, extra=extra),
              "f.tif", "px across", words)


def test_a_huge_frame_is_refused_from_its_header(cli, tiny_bundle, tmp_path):
    """A 20000 x 20000 frame (800 MB on disk, sparse here) is refused before it is read."""
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, shape=(20000, 20000), dtype=np.uint16)
    _one_line(_classify(cli, tmp_path, tiny_bundle, big), "20000 x 20000", "400 Mpx",
              "at most 64 Mpx")


@pytest.mark.parametrize(("change", "words"), [
    ({"classes": ["interphase", "interphase", "anaphase"]}, "named twice"),
    ({"classes": ["interphase", "", "anaphase"]}, "empty name"),
    ({"card_version": 7}, "card_version 7"),
    ({"input": {"crop_um": 1e9}}, "input.crop_um"),
    ({"input": {"crop_um": -4}}, "input.crop_um"),
])
def test_bad_cards_name_the_card_and_field(cli, tiny_bundle, tmp_path, change, words):
    bundle = copy_bundle(tiny_bundle, tmp_path / "b", change)
    tifffile.imwrite(tmp_path / "f.tif", _frame())
    _one_line(_classify(cli, tmp_path, bundle, tmp_path / "f.tif"),
              str(bundle / "model_card.json"), words)


def test_a_deeply_nested_card(cli, tiny_bundle, tmp_path):
    bundle = copy_bundle(tiny_bundle, tmp_path / "b")
    card = json.loads((bundle / "model_card.json").read_text())
    text = json.dumps(card)[:-1] + ', "notes": ' + "[" * 100000 + "]" * 100000 + "}"
    (bundle / "model_card.json").write_text(text)
    tifffile.imwrite(tmp_path / "f.tif", _frame())
    _one_line(_classify(cli, tmp_path, bundle, tmp_path / "f.tif"), "nested too deeply")


def test_crops_out_rule(cli, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    tifffile.imwrite(frames / "f.tif", _frame(6))
    args = ["crops", frames / "f.tif", "--pixel-size-um", "0.645", "--out"]
    _one_line(cli(*args, frames), "--out", "input")
    assert sorted(p.name for p in frames.iterdir()) == ["f.tif"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    _one_line(cli(*args, tmp_path / "mine"), "did not write")
    assert cli(*args, tmp_path / "pool").code == 0
    first = sorted(p.name for p in (tmp_path / "pool" / "crops").iterdir())
    assert first and cli(*args, tmp_path / "pool").code == 0  # an earlier output is replaced
    assert sorted(p.name for p in (tmp_path / "pool" / "crops").iterdir()) == first
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    assert cli("crops", frames / "f.tif", bad, "--pixel-size-um", "0.645", "--out",
               tmp_path / "new").code == 2
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_the_same_crops_under_two_classes(cli, tmp_path):
    labelled = tmp_path / "labelled"
    rng = np.random.default_rng(0)
    for cls in ("round", "pair"):
        (labelled / cls).mkdir(parents=True)
        for i in range(6):
            np.save(labelled / cls / f"{cls}{i}.npy", rng.normal(100, 10, (64, 64)))
    os.symlink(labelled / "round", labelled / "plate")
    res = cli("train", "--labelled", labelled, "--supervised-only", "--out", tmp_path / "run")
    _one_line(res, "same folder", "(a link)")
    os.unlink(labelled / "plate")
    (labelled / "pair" / "copy.npy").write_bytes((labelled / "round" / "round3.npy").read_bytes())
    res = cli("train", "--labelled", labelled, "--supervised-only", "--out", tmp_path / "run")
    _one_line(res, "copy.npy", "round3.npy", "byte for byte")


@pytest.mark.slow
def test_a_truncated_checkpoint_in_one_line_without_tensorflow_noise(tmp_path):
    """A real process: what TensorFlow prints at start-up must not come before the error."""
    import keras

    run = tmp_path / "run"
    run.mkdir()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(run / "discriminator.keras")
    data = (run / "discriminator.keras").read_bytes()
    (run / "discriminator.keras").write_bytes(data[: len(data) // 2])
    (run / "run.json").write_text(json.dumps({"classes": ["a", "b"], "method": "sgan"}))
    proc = subprocess.run([sys.executable, "-m", "smartscope", "export", str(run)],
                          capture_output=True, text=True, env={**os.environ,
                                                               "PYTHONPATH": str(REPO)},
                          timeout=300)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "truncated" in lines[0] and "discriminator.keras" in lines[0]
