"""Crop folders that declare their pixel size and cells; balanced sampling; grouped splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from smartscope.errors import TrainingDataError
from smartscope.train import data as d
from smartscope.train import splits as sp
from smartscope.train.splits import balanced_probabilities
from smartscope.vision import extract_crops, normalise
from smartscope.vision.crops import refield_crop
from smartscope.vision.dataset import folder_pixel_size, read_dataset_info, write_dataset_info


def _disc_frame(radius_px: float, side: int = 200) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side]
    r = np.hypot(yy - (side - 1) / 2, xx - (side - 1) / 2)
    return (100 + 1000 * (r < radius_px)).astype(np.uint16)


def test_refield_matches_run_time_geometry():
    # the same 10 um disc imaged at two pixel sizes gives the same model input once resampled
    fine, coarse = _disc_frame(10 / 0.25), _disc_frame(10 / 0.5)
    a = normalise(refield_crop(fine, 0.25, 30.0))
    b = normalise(refield_crop(coarse, 0.5, 30.0))
    assert np.mean(np.abs(a - b) > 0.5) < 0.03
    # and a stored crop at the model's own scale is returned untouched
    crop = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    assert np.array_equal(refield_crop(crop, 0.3, 64 * 0.3), crop)
    live = extract_crops(coarse, np.array([99.5]), np.array([99.5]), 0.5, crop_um=30.0)[0]
    assert np.allclose(refield_crop(coarse, 0.5, 30.0), live)


def test_dataset_json_declares_pixel_size(tmp_path):
    assert read_dataset_info(tmp_path) is None
    write_dataset_info(tmp_path, 0.645, "test")
    assert folder_pixel_size(tmp_path, None) == 0.645
    assert folder_pixel_size(tmp_path, 0.645) == 0.645
    with pytest.raises(TrainingDataError, match="declares pixel_size_um 0.645"):
        folder_pixel_size(tmp_path, 0.3)
    (tmp_path / "dataset.json").write_text(json.dumps({"pixel_size_um": -1}))
    with pytest.raises(TrainingDataError, match="field 'pixel_size_um'"):
        read_dataset_info(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"pixel_size": 1}))
    with pytest.raises(TrainingDataError, match="dataset.json"):
        read_dataset_info(tmp_path)


def _folder(root, radius_px, pixel_size_um, n=3):
    for cls in ("big", "small"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            r = radius_px if cls == "big" else radius_px / 2
            tifffile.imwrite(root / cls / f"{i}.tif", _disc_frame(r, side=96))
    write_dataset_info(root, pixel_size_um)
    (root / "groups.csv").write_text("file,group\nbig/0.tif,a\nbig/1.tif,a\n")
    return root


def test_two_microscopes_give_the_same_input(tmp_path):
    # 8 um discs at 0.25 and at 0.5 um/px: the same crops once both declare their pixel size
    fine = _folder(tmp_path / "fine", 8 / 0.25, 0.25)
    coarse = _folder(tmp_path / "coarse", 8 / 0.5, 0.5)
    a = d.load_labelled(fine, crop_um=20.0)
    b = d.load_labelled(coarse, crop_um=20.0)
    assert np.mean(np.abs(a.x - b.x) > 0.5) < 0.03
    both = d.merge_sets([a, b], ["fine", "coarse"])
    assert len(both) == 12 and both.classes == ("big", "small")
    assert both.files[0].startswith("fine/") and len(set(both.groups)) == 10
    # without the declaration the coarse crops would be resized whole: another picture
    (coarse / "dataset.json").unlink()
    c = d.load_labelled(coarse, crop_um=20.0)
    assert np.mean(np.abs(a.x - c.x) > 0.5) > 0.1


def test_split_keeps_a_cell_on_one_side():
    y = np.array([0] * 10 + [1] * 10)
    groups = [f"cell{i // 5}" for i in range(10)] + [str(i) for i in range(10, 20)]
    for seed in range(5):
        tr, va = sp.stratified_split(y, 0.5, seed, groups)
        assert set(tr).isdisjoint(va) and len(tr) + len(va) == 20
        side = {groups[i]: i in set(va) for i in range(10)}
        assert all(side[g] == (i in set(va)) for i, g in enumerate(groups[:10]))
        assert set(y[va]) == {0, 1} and set(y[tr]) == {0, 1}


def test_balanced_probabilities_share_classes_and_folders():
    y = np.array([0] * 90 + [0] * 10 + [1] * 5)
    src = ["a"] * 90 + ["b"] * 10 + ["a"] * 5
    p = balanced_probabilities(y, src)
    assert p.sum() == pytest.approx(1.0)
    assert p[:90].sum() == pytest.approx(0.25) and p[90:100].sum() == pytest.approx(0.25)
    assert p[100:].sum() == pytest.approx(0.5)


def test_folds_keep_a_cell_in_one_fold():
    y = np.array([0] * 12 + [1] * 12)
    groups = [f"c{i // 3}" for i in range(24)]  # 8 cells of 3 crops
    folds = sp.stratified_folds(y, 4, 0, groups=groups)
    seen = np.concatenate([held for _, held in folds])
    assert sorted(seen) == list(range(24))
    for _, held in folds:
        cells = {groups[i] for i in held}
        assert all(sum(g == c for g in groups) == sum(groups[i] == c for i in held)
                   for c in cells)
        assert set(y[held]) == {0, 1}
