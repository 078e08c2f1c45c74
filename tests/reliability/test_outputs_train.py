"""The output rule for ``train``, ``transfer``, ``export`` and ``evaluate`` (defects 2, 3, 9, 14
of the fault review): a run folder is built under a temporary name and moved into place when
complete; never into an input folder, a foreign folder, or over an earlier run without
``--overwrite`` (which then replaces the whole run); NaN crops and a NaN loss stop training."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import TESTS, CliResult

TINY = ["--size", "tiny", "--max-epochs", "1", "--min-epochs", "1", "--patience", "1",
        "--steps-per-epoch", "2", "--quiet"]


def _synth():
    spec = importlib.util.spec_from_file_location("_reliability_synth",
                                                  TESTS / "train" / "synth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crops")
    synth = _synth()
    return {"labelled": synth.write_labelled(root / "labelled", 12, seed=0),
            "test": synth.write_labelled(root / "test", 6, seed=1),
            "unlabelled": synth.write_unlabelled(root / "unlabelled", 40, seed=2)}


def _one_line(res: CliResult, *words: str) -> None:
    assert res.code == 2, res.stderr
    assert len(res.error_lines) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def _no_leftovers(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if ".partial-" in p.name or ".old-" in p.name]
    assert not left, left


def _train(cli, crops, out, *extra):
    return cli("train", "--labelled", crops["labelled"], "--unlabelled", crops["unlabelled"],
               "--out", out, *TINY, *extra)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("where", ["labelled", "inside_labelled", "unlabelled"])
def test_train_out_on_an_input_folder_is_refused(cli, crops, where):
    folder = crops["labelled" if where != "unlabelled" else "unlabelled"]
    before = _tree(folder)
    out = folder / "run" if where == "inside_labelled" else folder
    _one_line(_train(cli, crops, out), "--out", "input")
    assert _tree(folder) == before


def test_train_out_holding_other_files_is_refused(cli, crops, tiny_bundle, tmp_path):
    copied = tmp_path / "my_bundle"
    copied.mkdir()
    for f in tiny_bundle.iterdir():
        (copied / f.name).write_bytes(f.read_bytes())
    before = _tree(copied)
    _one_line(_train(cli, crops, copied), "--out", "not a training run")
    assert _tree(copied) == before
    _one_line(_train(cli, crops, copied, "--overwrite"), "--out", "not a training run")
    assert _tree(copied) == before


def test_train_out_that_is_a_file(cli, crops, tmp_path):
    (tmp_path / "f").write_text("x")
    _one_line(_train(cli, crops, tmp_path / "f"), "--out", "not a folder")
    _one_line(_train(cli, crops, tmp_path / "f" / "run"), "--out", "is a file")


def test_nan_crop_in_a_class_folder_is_named(cli, crops, tmp_path):
    labelled = tmp_path / "labelled"
    for cls in crops["labelled"].iterdir():
        (labelled / cls.name).mkdir(parents=True)
        for f in list(cls.iterdir())[:8]:
            (labelled / cls.name / f.name).write_bytes(f.read_bytes())
    bad = labelled / "round" / "nan.npy"
    np.save(bad, np.full((64, 64), np.nan, np.float32))
    res = cli("train", "--labelled", labelled, "--supervised-only", "--out", tmp_path / "run",
              *TINY)
    _one_line(res, str(bad), "NaN")
    assert not (tmp_path / "run").exists()
    _no_leftovers(tmp_path)


def test_nan_crops_in_the_unlabelled_pool_are_named(cli, crops, tmp_path):
    pool = np.random.default_rng(0).normal(100, 10, (20, 64, 64)).astype(np.float32)
    pool[3, 10, 10] = np.nan
    pool[7] = np.inf
    npz = tmp_path / "pool.npz"
    np.savez(npz, crops=pool)
    res = cli("train", "--labelled", crops["labelled"], "--unlabelled", npz,
              "--out", tmp_path / "run", *TINY)
    _one_line(res, str(npz), "3, 7", "NaN")
    assert not (tmp_path / "run").exists()


def test_a_nan_loss_stops_training(tmp_path):
    """The loop itself stops on a NaN loss (crops are given to it directly, past the checks
    of the loaders, as a diverging optimiser would produce them)."""
    from smartscope.errors import TrainingDataError
    from smartscope.train.sgan import SUPERVISED_ONLY, LoopConfig, run_loop

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (16, 64, 64, 1)).astype(np.float32)
    x[0] = np.nan
    y = np.arange(16) % 2
    cfg = LoopConfig(max_epochs=2, min_epochs=1, patience=1, steps_per_epoch=1, augment=False)
    with pytest.raises(TrainingDataError, match="NaN"):
        run_loop(x, y, x[8:], y[8:], 2, method=SUPERVISED_ONLY, size="tiny", cfg=cfg, seed=0)


@pytest.mark.slow
def test_run_folders_are_moved_into_place_and_overwrite_replaces_the_whole_run(
        cli, crops, tmp_path):
    out = tmp_path / "run"
    res = _train(cli, crops, out)
    assert res.code == 0, res.stderr
    assert (out / "generator.keras").is_file() and (out / "samples.png").is_file()
    assert json.loads((out / "run.json").read_text())["name"] == "run"
    _no_leftovers(tmp_path)

    before = _tree(out)
    _one_line(_train(cli, crops, out), "already holds a training run", "--overwrite")
    assert _tree(out) == before
    # a failing --overwrite run leaves the earlier run as it was
    res = cli("train", "--labelled", tmp_path / "nowhere", "--supervised-only", "--out", out,
              "--overwrite", *TINY)
    assert res.code == 2 and _tree(out) == before

    res = _train(cli, crops, out, "--overwrite", "--supervised-only")
    assert res.code == 0, res.stderr
    assert not (out / "generator.keras").exists() and not (out / "samples.png").exists()
    assert json.loads((out / "bundle" / "model_card.json").read_text())["method"] == \
        "supervised-only"
    _no_leftovers(tmp_path)

    # export replaces the bundle as a whole; evaluate writes only into a folder of its own
    assert cli("export", out).code == 0
    _no_leftovers(tmp_path)
    _one_line(cli("evaluate", out / "bundle", "--test", crops["test"], "--out",
                  out / "bundle" / "model.tflite"), "--out")
    _one_line(cli("evaluate", out / "bundle", "--test", crops["test"], "--out",
                  crops["test"]), "--out", "input")
    res = cli("evaluate", out / "bundle", "--test", crops["test"], "--out", tmp_path / "ev")
    assert res.code == 0 and (tmp_path / "ev" / "evaluation.json").is_file()
    # transfer may not write into its base run
    res = cli("transfer", "--base", out, "--labelled", crops["test"], "--out", out,
              "--overwrite", "--folds", "0", "--max-epochs", "1", "--quiet")
    _one_line(res, "--out", "input")
    assert (out / "run.json").is_file()
    _no_leftovers(tmp_path)
