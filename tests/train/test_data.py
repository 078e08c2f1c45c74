"""Bad training input gives one-line errors naming the folder or file; splits; batch rule."""

from __future__ import annotations

import numpy as np
import pytest
import synth

from smartscope.errors import TrainingDataError
from smartscope.train import data as d
from smartscope.train import splits as sp


def _labelled(tmp_path, per_class=6, classes=synth.CLASSES):
    return synth.write_labelled(tmp_path / "lab", per_class, seed=0, classes=classes)


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_reads_tif_png_npy_of_any_size(tmp_path):
    data = d.load_labelled(_labelled(tmp_path))
    assert data.x.shape == (18, 64, 64, 1) and data.x.dtype == np.float32
    assert data.x.min() >= -1 and data.x.max() <= 1
    assert data.classes == ("pair", "plate", "round")
    assert data.counts() == {"pair": 6, "plate": 6, "round": 6}
    assert len(data.sha256) == 64
    assert d.load_labelled(tmp_path / "lab").sha256 == data.sha256


def test_phase_names_come_in_cell_cycle_order(tmp_path):
    folder = _labelled(tmp_path, 2, ("metaphase", "junk", "interphase"))
    assert d.load_labelled(folder).classes == ("interphase", "metaphase", "junk")
    assert d.load_labelled(folder, ["junk", "metaphase"]).classes == ("junk", "metaphase")


def test_missing_labelled_folder(tmp_path):
    with pytest.raises(TrainingDataError) as e:
        d.load_labelled(tmp_path / "nope")
    assert "nope" in _one_line(e)


def test_missing_class_folder_named_in_classes(tmp_path):
    with pytest.raises(TrainingDataError) as e:
        d.load_labelled(_labelled(tmp_path), ["round", "anaphase"])
    assert "anaphase" in _one_line(e) and "class folder not found" in str(e.value)


def test_empty_class_folder(tmp_path):
    folder = _labelled(tmp_path)
    (folder / "empty").mkdir()
    (folder / "empty" / "notes.txt").write_text("not a crop")
    with pytest.raises(TrainingDataError) as e:
        d.load_labelled(folder)
    assert "empty" in _one_line(e) and "no crop files" in str(e.value)


def test_one_class_only(tmp_path):
    folder = _labelled(tmp_path, classes=("round",))
    with pytest.raises(TrainingDataError) as e:
        d.load_labelled(folder)
    assert "at least two class folders" in _one_line(e)


def test_unreadable_file_is_named(tmp_path):
    folder = _labelled(tmp_path)
    (folder / "plate" / "broken.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(TrainingDataError) as e:
        d.load_labelled(folder)
    assert "broken.tif" in _one_line(e)


def test_crop_that_is_not_a_2d_image_is_named(tmp_path):
    folder = _labelled(tmp_path)
    np.save(folder / "plate" / "stack.npy", np.zeros((3, 5, 64, 64)))
    with pytest.raises(TrainingDataError) as e:
        d.load_labelled(folder)
    assert "stack.npy" in _one_line(e)


def test_fewer_crops_than_folds(tmp_path):
    data = d.load_labelled(_labelled(tmp_path, per_class=4))
    with pytest.raises(TrainingDataError) as e:
        sp.stratified_folds(data.y, 5, 0, data.classes, tmp_path / "lab")
    assert "pair" in _one_line(e) and "--folds 5" in str(e.value)


def test_test_class_absent_from_training(tmp_path):
    test = synth.write_labelled(tmp_path / "test", 2, seed=1, classes=("round", "blob"))
    with pytest.raises(TrainingDataError) as e:
        d.load_test(test, ("pair", "plate", "round"))
    assert "blob" in _one_line(e) and "not a training class" in str(e.value)


def test_test_folder_may_hold_a_subset_of_classes(tmp_path):
    test = synth.write_labelled(tmp_path / "test", 3, seed=1, classes=("round",))
    data = d.load_test(test, ("pair", "plate", "round"))
    assert set(data.y.tolist()) == {2}


def test_unlabelled_folder_and_npz(tmp_path):
    with pytest.raises(TrainingDataError) as e:
        d.load_unlabelled(tmp_path / "missing")
    assert "missing" in _one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingDataError):
        d.load_unlabelled(tmp_path / "empty")
    pool = d.load_unlabelled(synth.write_unlabelled(tmp_path / "unl", 7, seed=0))
    assert len(pool) == 7 and (pool.y == -1).all()
    np.savez_compressed(tmp_path / "pool.npz", crops=np.random.default_rng(0).integers(
        0, 4000, (5, 70, 70)).astype(np.uint16))
    assert d.load_unlabelled(tmp_path / "pool.npz").x.shape == (5, 64, 64, 1)


@pytest.mark.parametrize(("n", "expected"), [(4, 2), (9, 4), (40, 20), (199, 99), (200, 100),
                                             (1000, 100)])
def test_batch_size_rule(n, expected):
    assert sp.batch_size_rule(n) == expected


def test_batch_size_rule_needs_labels():
    with pytest.raises(TrainingDataError):
        sp.batch_size_rule(3)


def test_stratified_split_and_folds():
    y = np.repeat([0, 1, 2], [50, 20, 5])
    tr, va = sp.stratified_split(y, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
    assert [int(np.sum(y[va] == k)) for k in range(3)] == [10, 4, 1]
    folds = sp.stratified_folds(y, 5, seed=3)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(len(y)))
    for train, h in folds:
        assert len(np.intersect1d(train, h)) == 0
        assert int(np.sum(y[h] == 2)) == 1


def test_subsampling_is_seeded(tmp_path):
    data = d.load_labelled(_labelled(tmp_path, per_class=6))
    a = sp.subsample_per_class(data, 4, seed=1)
    b = sp.subsample_per_class(data, 4, seed=1)
    assert a.files == b.files and a.counts() == {"pair": 4, "plate": 4, "round": 4}
    assert sp.subsample_per_class(data, 4, seed=2).files != a.files
    assert len(sp.subsample(data, 5, seed=0)) == 5
