"""classify_frame: detect + crop + one batched prediction, CSV rows, int8 vs float on real crops."""

from __future__ import annotations

import numpy as np

from smartscope.classify import Classifier, FrameResult, classify_frame
from smartscope.vision import find_nuclei, prepare_crops

from .conftest import CLASSES


def _frame(n: int = 6, seed: int = 0) -> np.ndarray:
    """Bright discs of 18 um on a 0.645 um/px frame with a camera offset and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:200, 0:300] * 0.645
    img = 33000 + rng.normal(0, 5, yy.shape)
    for i in range(n):
        cy, cx = 30 + 40 * (i // 4), 25 + 40 * (i % 4)
        img += 500 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - 9) / 1.0))
    return img.astype(np.uint16)


def test_classify_frame_rows_and_counts(int8_bundle):
    clf = Classifier(int8_bundle)
    result = classify_frame(_frame(), 0.645, clf)
    assert isinstance(result, FrameResult) and len(result) == 6
    assert result.probabilities.shape == (6, 3)
    assert set(result.phases) <= set(CLASSES)
    rows = result.rows()
    assert len(rows) == 6
    assert list(rows[0])[:6] == ["cell", "y", "x", "area_um2", "phase", "confidence"]
    assert {f"p_{c}" for c in CLASSES} <= set(rows[0])
    for row, conf in zip(rows, result.confidence, strict=True):
        assert row["confidence"] == round(float(conf), 4)
        assert row["phase"] == max(CLASSES, key=lambda c: row[f"p_{c}"])
    assert sum(result.count(c) for c in CLASSES) == 6
    assert result.count("not-a-class") == 0
    assert result.count(CLASSES[0], min_confidence=1.01) == 0
    assert set(result.timings_ms) == {"detect", "crop", "classify", "total"}


def test_empty_frame_gives_empty_result(int8_bundle):
    clf = Classifier(int8_bundle)
    result = classify_frame(np.zeros((128, 128), np.uint16), 0.645, clf)
    assert len(result) == 0 and result.rows() == [] and result.probabilities.shape == (0, 3)
    assert result.phases == () and result.confidence.shape == (0,)


def test_given_nuclei_are_used(int8_bundle):
    clf = Classifier(int8_bundle)
    image = _frame()
    nuclei = find_nuclei(image, 0.645)
    direct = clf.predict(prepare_crops(image, nuclei.y, nuclei.x, 0.645))
    result = classify_frame(image, 0.645, clf, nuclei=nuclei)
    np.testing.assert_array_equal(result.probabilities, direct)


def _assert_int8_matches_float(crops, int8_bundle, float_bundle):
    """Probabilities within 0.05; same top class wherever the float model is decisive."""
    p_int8 = Classifier(int8_bundle).predict(crops)
    p_float = Classifier(float_bundle).predict(crops)
    assert np.abs(p_int8 - p_float).max() < 0.05
    margin = np.diff(np.sort(p_float, axis=1)[:, -2:], axis=1)[:, 0]
    agree = p_int8.argmax(1) == p_float.argmax(1)
    assert agree[margin > 0.05].all() and agree.mean() > 0.9


def test_int8_and_float_agree_on_real_crops(hela_frames, int8_bundle, float_bundle):
    import tifffile

    frame = tifffile.imread(hela_frames, key=5)
    nuclei = find_nuclei(frame, 0.645)
    crops = prepare_crops(frame, nuclei.y, nuclei.x, 0.645)
    assert len(crops) > 100
    _assert_int8_matches_float(crops, int8_bundle, float_bundle)


def test_int8_and_float_agree_on_the_shipped_real_crops(int8_bundle, float_bundle):
    """The same check on the labelled real HeLa crops in the repository (runs everywhere)."""
    from pathlib import Path

    import tifffile

    from smartscope.vision.preprocess import prepare_crop_file_array

    files = sorted((Path(__file__).resolve().parents[2] / "data" / "hela_phases" / "test")
                   .glob("*/*.tif"))
    assert len(files) > 100
    crops = np.stack([prepare_crop_file_array(tifffile.imread(f)) for f in files])[..., None]
    _assert_int8_matches_float(crops, int8_bundle, float_bundle)
