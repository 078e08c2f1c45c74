"""Classifier: bundle loading checks, batched int8 / float prediction, no TensorFlow at run time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smartscope.classify import Classifier, load_classifier
from smartscope.classify.card import CARD_FILE, MODEL_FILE
from smartscope.errors import ModelBundleError

from .conftest import CLASSES, blob_crops


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return blob_crops(n, 64, seed + 100)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(bundle, dst)
    return dst


def _edit_card(folder: Path, **changes) -> None:
    path = folder / CARD_FILE
    data = json.loads(path.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(json.dumps(data))


def test_int8_predict_shapes_and_rows_sum_to_one(int8_bundle):
    clf = Classifier(int8_bundle)
    assert clf.classes == CLASSES
    assert clf.card.name == "int8"
    assert clf.input_dtype == np.int8
    p = clf.predict(_crops(5))
    assert p.shape == (5, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert (p >= 0).all()


def test_channel_axis_optional_and_batch_resize(int8_bundle):
    clf = load_classifier(int8_bundle)
    x = _crops(7, seed=3)
    p3 = clf.predict(x)
    p4 = clf.predict(x[..., None])
    np.testing.assert_array_equal(p3, p4)
    # a different batch size resizes the input; results for the same crops do not change
    np.testing.assert_array_equal(clf.predict(x[:2]), p3[:2])
    np.testing.assert_array_equal(clf.predict(x[5:6]), p3[5:6])


def test_empty_batch_gives_empty_result(int8_bundle):
    clf = Classifier(int8_bundle)
    assert clf.predict(np.zeros((0, 64, 64), np.float32)).shape == (0, 3)


def test_wrong_crop_shape_is_one_line_error(int8_bundle):
    clf = Classifier(int8_bundle)
    with pytest.raises(ModelBundleError, match=r"give \(N, 64, 64\)") as e:
        clf.predict(np.zeros((2, 32, 32), np.float32))
    assert "\n" not in str(e.value)


def test_int8_agrees_with_float_model(int8_bundle, float_bundle, keras_model):
    x = _crops(40, seed=7)
    p_int8 = Classifier(int8_bundle).predict(x)
    p_float = Classifier(float_bundle).predict(x)
    p_keras = keras_model.predict(x[..., None], verbose=0)
    np.testing.assert_allclose(p_float, p_keras, atol=1e-5)
    assert np.abs(p_int8 - p_float).max() < 0.03
    decisive = np.sort(p_float, axis=1)[:, -1] - np.sort(p_float, axis=1)[:, -2] > 0.03
    assert (p_int8.argmax(1) == p_float.argmax(1))[decisive].all()


def test_two_threads_give_same_result(int8_bundle):
    x = _crops(9, seed=2)
    np.testing.assert_array_equal(
        Classifier(int8_bundle, num_threads=1).predict(x),
        Classifier(int8_bundle, num_threads=2).predict(x),
    )


def test_tflite_path_accepted(int8_bundle):
    assert Classifier(int8_bundle / MODEL_FILE).classes == CLASSES


@pytest.mark.parametrize(
    "breakage, match",
    [
        ("no_folder", "bundle folder not found"),
        ("no_model", "model file not found"),
        ("no_card", "model card not found"),
        ("corrupt", "not a readable TFLite model"),
        ("classes", "2 classes; fix 'classes'"),
        ("size", r"does not match the card's input \(32, 32, 1\)"),
        ("normalisation", "card normalisation 'zscore'"),
    ],
)
def test_bad_bundles_give_one_line_errors(int8_bundle, tmp_path, breakage, match):
    folder = _copy(int8_bundle, tmp_path)
    if breakage == "no_folder":
        folder = tmp_path / "nowhere"
    elif breakage == "no_model":
        (folder / MODEL_FILE).unlink()
    elif breakage == "no_card":
        (folder / CARD_FILE).unlink()
    elif breakage == "corrupt":
        (folder / MODEL_FILE).write_bytes(b"this is not a flatbuffer" * 10)
    elif breakage == "classes":
        _edit_card(folder, classes=["a", "b"])
    elif breakage == "size":
        _edit_card(folder, input__size_px=32)
    elif breakage == "normalisation":
        _edit_card(folder, input__normalisation="zscore")
    with pytest.raises(ModelBundleError, match=match) as e:
        Classifier(folder)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [0, -2, "two", 1.5, True])
def test_bad_thread_count(int8_bundle, bad):
    with pytest.raises(ModelBundleError, match="num_threads="):
        Classifier(int8_bundle, num_threads=bad)


def test_auto_threads_follow_the_cores_this_process_may_use(int8_bundle, monkeypatch):
    import smartscope.classify.runtime as runtime

    for cores, expected in [({0}, 1), ({0, 1}, 2), (set(range(16)), runtime.MAX_AUTO_THREADS)]:
        monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda _pid, c=cores: c,
                            raising=False)
        assert runtime.default_threads() == expected
        assert Classifier(int8_bundle).num_threads == expected
        assert Classifier(int8_bundle, num_threads="auto").num_threads == expected
    assert Classifier(int8_bundle, num_threads=3).num_threads == 3


def test_runtime_never_imports_tensorflow(int8_bundle):
    code = (
        "import sys, numpy as np\n"
        "from smartscope.classify import Classifier\n"
        f"clf = Classifier({str(int8_bundle)!r})\n"
        "p = clf.predict(np.zeros((3, 64, 64), np.float32))\n"
        "assert p.shape == (3, 3), p.shape\n"
        "from smartscope.classify import classify_frame\n"
        "img = np.full((200, 200), 100, np.uint16); img[80:120, 80:120] = 900\n"
        "assert len(classify_frame(img, 0.645, clf)) == 1\n"
        "bad = sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith('keras'))\n"
        "print('LOADED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout


def test_padded_batches_give_the_same_probabilities(int8_bundle):
    clf = Classifier(int8_bundle)
    x = _crops(40, seed=5)
    full = clf.predict(x)  # 40 -> runs as 48
    for n in (37, 33, 20, 17, 1):  # some reuse the plan (padded), some re-plan
        np.testing.assert_array_equal(clf.predict(x[:n]), full[:n])


def test_no_runtime_gives_dependency_error(monkeypatch):
    import importlib

    from smartscope.classify import interpreter_class
    from smartscope.errors import DependencyError

    real = importlib.import_module
    tried = []

    def fake(name, *args, **kwargs):
        if name.endswith("interpreter") or name == "tensorflow.lite":
            tried.append(name)
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(DependencyError, match="pip install ai-edge-litert"):
        interpreter_class()
    assert tried == ["ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite"]
