"""Second outside-style review of the command line (after the fault review): inputs a new user
gets wrong that were accepted or lost data. Each case is refused in one line naming the file
and the field or value, and nothing the user had is changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from .conftest import CLASSES, CliResult, base_protocol, copy_bundle, write_protocol


def _one_line(res: CliResult, *words: str) -> None:
    assert res.code == 2, res.stdout + res.stderr
    assert len(res.error_lines) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


# -- a yes/no where a number belongs (YAML reads true/yes/on as a boolean; pydantic took it as 1)

@pytest.mark.parametrize("section, field, value", [
    ("screening", "exposure_ms", True),       # a 1 ms exposure
    ("screening", "n_timepoints", "yes"),     # one time point
    ("microscope", "seed", "on"),
    ("triggers.0", "min_confidence", True),   # a trigger that needs 100 %
])
def test_a_yes_no_for_a_protocol_number_is_refused(cli, tiny_bundle, tmp_path, section, field,
                                                   value):
    data = base_protocol()
    node = data
    for p in section.split("."):
        node = node[int(p)] if p.isdigit() else node[p]
    node[field] = "PLACEHOLDER"
    text = write_protocol(tmp_path, data).read_text().replace("PLACEHOLDER",
                                                              str(value).lower())
    copy_bundle(tiny_bundle, tmp_path / "bundle")
    res = cli("validate", write_protocol(tmp_path, text))
    _one_line(res, "protocol.yaml", field, "yes/no, not a number")


def test_yes_no_fields_still_take_yes_no(cli, tiny_bundle, tmp_path):
    data = base_protocol()
    data["triggers"][0]["once_per_cell"] = True
    data["microscope"]["camera"] = {"flip_x": True}
    copy_bundle(tiny_bundle, tmp_path / "bundle")
    res = cli("validate", write_protocol(tmp_path, data))
    assert res.code == 0, res.stderr


def test_a_yes_no_in_a_model_card_is_refused(cli, tiny_bundle, tmp_path):
    bundle = copy_bundle(tiny_bundle, tmp_path / "b", {"input": {"crop_um": True}})
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((64, 64), np.uint16))
    res = cli("classify", tmp_path / "f.tif", "--model", bundle, "-o", tmp_path / "c.csv")
    _one_line(res, "model_card.json", "crop_um", "yes/no")


def test_a_yes_no_pixel_size_in_dataset_json_is_refused(cli, tiny_bundle, tmp_path):
    rng = np.random.default_rng(0)
    for c in CLASSES:
        (tmp_path / "t" / c).mkdir(parents=True)
        tifffile.imwrite(tmp_path / "t" / c / "a.tif", rng.integers(0, 999, (64, 64), np.uint16))
    (tmp_path / "t" / "dataset.json").write_text(json.dumps({"pixel_size_um": True}))
    res = cli("evaluate", tiny_bundle, "--test", tmp_path / "t")
    _one_line(res, "dataset.json", "pixel_size_um", "yes/no")
    assert "Value error" not in res.stderr


# -- export / train --overwrite replaced bundle/ whole, deleting a user's files in it

@pytest.mark.slow
def test_export_and_overwrite_keep_a_users_files_in_the_bundle(cli, tmp_path):
    from .test_outputs_train import TINY, _synth, _tree

    labelled = _synth().write_labelled(tmp_path / "labelled", 12, seed=0)
    out = tmp_path / "run"
    train = ("train", "--labelled", labelled, "--supervised-only", "--folds", "0", "--out", out,
             *TINY)
    assert cli(*train).code == 0
    notes = out / "bundle" / "notes.txt"
    notes.write_text("evaluated on plate 3: fine")
    before = _tree(out)
    _one_line(cli("export", out), "bundle", "notes.txt", "move them out")
    _one_line(cli(*train, "--overwrite"), "bundle", "notes.txt", "move them out")
    assert _tree(out) == before
    notes.unlink()
    assert cli("export", out).code == 0
    assert sorted(p.name for p in (out / "bundle").iterdir()) == ["model.tflite",
                                                                   "model_card.json"]
    # a truncated export_data.npz: one line (was a BadZipFile traceback), the bundle kept
    before = _tree(out)
    data = out / "export_data.npz"
    data.write_bytes(data.read_bytes()[:1000])
    before["export_data.npz"] = data.read_bytes()
    _one_line(cli("export", out), "export_data.npz", "truncated or corrupt")
    assert _tree(out) == before


@pytest.mark.parametrize("info, words", [
    ([], "holds a list"), ({"method": "sgan", "training": {}}, "field 'classes' missing"),
    ({"classes": "a,b", "method": "sgan", "training": {}}, "not a list of class names"),
])
def test_export_and_transfer_refuse_a_run_json_of_the_wrong_shape(cli, tmp_path, info, words):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(info))
    (run / "discriminator.keras").write_bytes(b"")  # read only after run.json
    _one_line(cli("export", run), "run.json", words)
    labelled = _test_folder(tmp_path / "lab", 0.645)
    _one_line(cli("transfer", "--base", run, "--labelled", labelled, "--out", tmp_path / "t"),
              "run.json", words)
    assert not (tmp_path / "t").exists()


# -- crops that cannot show the model's field (a stray small file, an absurd pixel size) were
# -- padded with background and scored or trained on; the coverage warning named only the first

def _test_folder(root, pixel_size_um, odd=None):
    rng = np.random.default_rng(1)
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        for i in range(2):
            tifffile.imwrite(root / c / f"{i}.tif", rng.integers(100, 900, (64, 64), np.uint16))
    if odd is not None:
        tifffile.imwrite(root / CLASSES[1] / "z_odd.tif", odd)
    (root / "dataset.json").write_text(json.dumps({"pixel_size_um": pixel_size_um}))
    return root


def test_a_crop_far_smaller_than_the_field_is_refused(cli, tiny_bundle, tmp_path):
    small = np.full((8, 8), 500, np.uint16)  # 5 um of a 20.64 um field, after 64 px crops
    res = cli("evaluate", tiny_bundle, "--test", _test_folder(tmp_path / "t", 0.645, small))
    _one_line(res, "z_odd.tif", "8 x 8 px", "0.645 um/px", "% of the model's")


@pytest.mark.parametrize("px, words", [(1e-9, "% of the model's"), (50, "field in 0.")])
def test_an_absurd_declared_pixel_size_is_refused(cli, tiny_bundle, tmp_path, px, words):
    res = cli("evaluate", tiny_bundle, "--test", _test_folder(tmp_path / "t", px))
    _one_line(res, "64 x 64 px", "dataset.json or --pixel-size-um", words)


# -- a file given where a bundle folder belongs; an impossible --link-um (was a traceback)

def test_a_file_given_as_the_model_bundle(cli, tiny_bundle, tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((64, 64), np.uint16))
    res = cli("classify", tmp_path / "f.tif", "--model", tmp_path / "f.tif", "-o",
              tmp_path / "c.csv")
    _one_line(res, "f.tif: is a file, not a model bundle", "give the folder")
    # the card's path names its bundle as well as the model's does
    from smartscope.classify import Classifier

    assert Classifier(tiny_bundle / "model_card.json").classes == CLASSES


@pytest.mark.parametrize("link", ["-1", "nan", "0"])
def test_label_refuses_an_impossible_link_distance(cli, tmp_path, link):
    rng = np.random.default_rng(2)
    frame = rng.integers(90, 110, (128, 128)).astype(np.uint16)
    frame[40:60, 40:60] += 800
    tifffile.imwrite(tmp_path / "f.tif", frame)
    assert cli("crops", tmp_path / "f.tif", "--pixel-size-um", "0.645", "--out",
               tmp_path / "pool").code == 0
    res = cli("label", tmp_path / "pool", "--classes", "a,b", "--out", tmp_path / "lab",
              "--no-open", "--link-um", link)
    _one_line(res, "--link-um", "give the largest move")
    assert not (tmp_path / "lab").exists()


# -- simulate --snap / --png / --truth replaced any existing file (a real camera TIFF, a figure)

def test_simulate_replaces_only_its_own_files(cli, tmp_path):
    mine = {"--snap": tmp_path / "camera.tif", "--png": tmp_path / "figure.png",
            "--truth": tmp_path / "cells.csv"}
    tifffile.imwrite(mine["--snap"], np.full((32, 32), 7, np.uint16))
    mine["--png"].write_bytes(b"\x89PNG\r\n\x1a\n a figure of mine")
    mine["--truth"].write_text("id,count\n1,2\n")
    before = {k: p.read_bytes() for k, p in mine.items()}
    new = {"--snap": tmp_path / "s.tif", "--png": tmp_path / "s.png", "--truth": tmp_path / "t.csv"}
    for option, path in mine.items():
        args = {**new, option: path}
        res = cli("simulate", *[a for kv in args.items() for a in kv], "--sensor-px", "64")
        _one_line(res, option, path.name, "not written by this command")
        assert path.read_bytes() == before[option]
    args = [a for kv in new.items() for a in kv]
    assert cli("simulate", *args, "--sensor-px", "64").code == 0
    assert cli("simulate", *args, "--sensor-px", "64", "--seed", "1").code == 0  # its own


# -- evaluate --protocol left a trigger on a phase the bundle lacks out without a word

def test_evaluate_protocol_with_a_phase_the_bundle_lacks(cli, tiny_bundle, tmp_path):
    data = base_protocol()
    data["triggers"][0]["phase"] = "prophase"  # the tiny bundle: interphase, metaphase, anaphase
    proto = write_protocol(tmp_path, data)
    test = _test_folder(tmp_path / "t", 0.645)
    _one_line(cli("evaluate", tiny_bundle, "--test", test, "--protocol", proto),
              "protocol.yaml", "triggers[0].phase", "prophase", "not a class of the model")
    data["triggers"][0]["phase"] = "metaphase"
    res = cli("evaluate", tiny_bundle, "--test", test, "--protocol",
              write_protocol(tmp_path, data))
    assert res.code == 0 and "protocol threshold metaphase >= 0.7" in res.stdout, res.stderr


# -- train / transfer --test the labelled folder itself: "test" scores of trained-on crops

@pytest.mark.parametrize("inside", [False, True])
def test_a_test_folder_overlapping_the_labelled_one_is_refused(cli, tmp_path, inside):
    labelled = _test_folder(tmp_path / "lab", 0.645)
    test = labelled / CLASSES[0] if inside else labelled
    res = cli("train", "--labelled", labelled, "--test", test, "--supervised-only", "--out",
              tmp_path / "run")
    _one_line(res, "--test", "overlaps the labelled folder", "held-out")
    assert not (tmp_path / "run").exists()


def test_a_folder_given_as_the_protocol(cli, tmp_path):
    _one_line(cli("validate", tmp_path), "is a folder, not a protocol file")


# -- --threads 100000: LiteRT ran out of memory (traceback), TensorFlow spun for minutes

def test_absurd_thread_counts_are_refused(cli, tiny_bundle, tmp_path):
    from smartscope.classify.runtime import resolve_threads
    from smartscope.errors import ModelBundleError

    tifffile.imwrite(tmp_path / "f.tif", np.zeros((64, 64), np.uint16))
    res = cli("classify", tmp_path / "f.tif", "--model", tiny_bundle, "-o", tmp_path / "c.csv",
              "--threads", "100000")
    _one_line(res, "--threads 100000", "1 to 64")
    with pytest.raises(ModelBundleError, match="at most 64"):
        resolve_threads(100000)
    res = cli("train", "--labelled", _test_folder(tmp_path / "lab", 0.645), "--supervised-only",
              "--threads", "100000", "--out", tmp_path / "run")
    _one_line(res, "--threads", "100000", "1 to 64")
    assert not (tmp_path / "run").exists()


def test_crops_without_a_pixel_size_or_with_out_dot(cli, tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((64, 64), np.uint16))
    _one_line(cli("crops", tmp_path / "f.tif", "--out", tmp_path / "o"),
              "--pixel-size-um: give the frames' pixel size")
    res = cli("crops", tmp_path / "f.tif", "--pixel-size-um", "0.645", "--out", ".")
    _one_line(res, "--out .")
