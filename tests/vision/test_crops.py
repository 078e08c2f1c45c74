"""extract_crops / prepare_crops: geometry at a fixed physical scale, edges, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartscope.errors import ImageError
from smartscope.vision import CROP_UM, extract_crops, find_nuclei, normalise, prepare_crops
from smartscope.vision.preprocess import _percentiles

from .conftest import render_frame


def test_reference_pixel_size_is_a_plain_cut():
    img = np.random.default_rng(0).integers(0, 1000, (300, 400)).astype(np.uint16)
    crops = extract_crops(img, np.array([100.2, 150.0]), np.array([200.7, 60.4]), 0.645)
    assert crops.shape == (2, 64, 64) and crops.dtype == np.float32
    np.testing.assert_array_equal(crops[0], img[69:133, 169:233])


def test_outside_the_frame_is_background_fill():
    img = np.full((100, 100), 500, np.uint16)
    crop = extract_crops(img, np.array([0.0]), np.array([99.0]), 0.645, fill=7.0)[0]
    assert (crop == 7).sum() > 0 and (crop == 500).sum() > 0
    assert (crop[:31] == 7).all() and (crop[40:, :20] == 500).all()
    auto = extract_crops(img + 100, np.array([0.0]), np.array([0.0]), 0.645)[0]
    assert set(np.unique(auto)) == {600.0}  # default fill: the frame's background level


@pytest.mark.parametrize("pixel_size_um", [0.2, 0.3225, 1.29])
def test_same_physical_field_at_any_pixel_size(pixel_size_um):
    """A nucleus imaged at another pixel size gives nearly the same normalised crop."""
    centre = np.array([[30.0, 30.0], [30.0, 48.0]])
    ref = render_frame((100, 100), centre, 0.645, noise=0.0)
    side = int(round(100 * 0.645 / pixel_size_um))
    other = render_frame((side, side), centre, pixel_size_um, noise=0.0)
    c_ref = prepare_crops(ref, [30 / 0.645 - 0.5], [30 / 0.645 - 0.5], 0.645)[0, ..., 0]
    c_other = prepare_crops(
        other, [30 / pixel_size_um - 0.5], [30 / pixel_size_um - 0.5], pixel_size_um
    )[0, ..., 0]
    assert np.corrcoef(c_ref.ravel(), c_other.ravel())[0, 1] > 0.97
    assert np.abs(c_ref - c_other).mean() < 0.1


def test_prepare_crops_shape_and_range(synthetic_frame):
    image, _, px = synthetic_frame
    nuclei = find_nuclei(image, px)
    crops = prepare_crops(image, nuclei.y, nuclei.x, px)
    assert crops.shape == (len(nuclei), 64, 64, 1) and crops.dtype == np.float32
    assert crops.min() >= -1 and crops.max() <= 1
    # the nucleus is in the middle of its crop
    centre = crops[:, 28:36, 28:36, 0].mean(axis=(1, 2))
    corner = crops[:, :6, :6, 0].mean(axis=(1, 2))
    assert (centre > corner + 0.5).all()


def test_no_centres_gives_empty_batch():
    img = np.zeros((50, 50), np.uint16)
    assert extract_crops(img, [], [], 0.645).shape == (0, 64, 64)
    assert prepare_crops(img, [], [], 0.645).shape == (0, 64, 64, 1)


@pytest.mark.parametrize(
    "y, x, kw, match",
    [
        ([1.0, 2.0], [1.0], {}, "same length"),
        ([np.nan], [1.0], {}, "NaN"),
        ([1.0], [1.0], {"pixel_size_um": 0.0}, "pixel_size_um=0.0"),
        ([1.0], [1.0], {"crop_um": -CROP_UM}, "crop_um"),
    ],
)
def test_bad_arguments(y, x, kw, match):
    args = {"pixel_size_um": 0.645, **kw}
    with pytest.raises(ImageError, match=match):
        extract_crops(np.zeros((50, 50), np.uint16), y, x, **args)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 4),
    side=st.integers(2, 70),
    seed=st.integers(0, 2**16),
)
def test_fast_percentiles_equal_numpy(n, side, seed):
    flat = np.random.default_rng(seed).normal(0, 100, (n, side * side)).astype(np.float32)
    lo, hi = _percentiles(flat, 1.0, 99.8)
    ref_lo, ref_hi = np.percentile(flat, [1.0, 99.8], axis=1)
    np.testing.assert_allclose(lo, ref_lo, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(hi, ref_hi, rtol=1e-5, atol=1e-3)


def test_normalise_float32_and_flat_crop():
    out = normalise(np.full((2, 64, 64), 33000, np.uint16))
    assert out.dtype == np.float32 and (out == -1).all()
