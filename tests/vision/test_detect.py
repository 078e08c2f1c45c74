"""find_nuclei: synthetic frames (offset, gradient, noise, any pixel size), bad input, real data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartscope.errors import ImageError
from smartscope.vision import Nuclei, find_nuclei

from .conftest import grid_centres, render_frame


def _match(nuclei: Nuclei, centres_um: np.ndarray, pixel_size_um: float, tol_um: float = 2.0):
    found = np.stack([nuclei.y, nuclei.x], axis=1) * pixel_size_um + pixel_size_um / 2
    d = np.linalg.norm(found[:, None, :] - centres_um[None, :, :], axis=2)
    return d.min(axis=0) <= tol_um, d.min(axis=1) <= tol_um


def test_finds_every_nucleus_dim_and_bright(synthetic_frame):
    image, centres, px = synthetic_frame
    nuclei = find_nuclei(image, px)
    hit, real = _match(nuclei, centres, px)
    assert hit.all(), f"missed {centres[~hit]}"
    assert real.all() and len(nuclei) == len(centres)
    expected_area = np.pi * 9.0**2
    assert np.all(np.abs(nuclei.area_um2 / expected_area - 1) < 0.4), nuclei.area_um2
    assert (nuclei.mean_intensity > 0).all()
    assert not nuclei.touches_edge.any()


@pytest.mark.parametrize("pixel_size_um", [0.2, 0.645, 1.29])
def test_pixel_size_independent(pixel_size_um):
    centres = grid_centres(2, 3, 40.0, 30.0)
    side = int(round(140 / pixel_size_um))
    image = render_frame((side, side), centres, pixel_size_um, brightness=300.0)
    nuclei = find_nuclei(image, pixel_size_um)
    hit, real = _match(nuclei, centres, pixel_size_um, tol_um=2.5)
    assert hit.all() and real.all()
    np.testing.assert_allclose(nuclei.area_um2, np.pi * 9.0**2, rtol=0.4)


def test_touching_nuclei_are_split():
    centres = np.array([[40.0, 40.0], [40.0, 58.5], [90.0, 60.0]])  # first two touch (d = 18)
    image = render_frame((200, 200), centres, 0.645, brightness=600.0)
    nuclei = find_nuclei(image, 0.645)
    hit, real = _match(nuclei, centres, 0.645, tol_um=3.0)
    assert len(nuclei) == 3 and hit.all() and real.all()


def test_labels_match_nuclei(synthetic_frame):
    image, _, px = synthetic_frame
    nuclei = find_nuclei(image, px, return_labels=True)
    assert nuclei.labels is not None and nuclei.labels.shape == image.shape
    ids = np.unique(nuclei.labels)
    np.testing.assert_array_equal(ids, np.arange(len(nuclei) + 1))
    for i in range(len(nuclei)):
        assert nuclei.labels[int(round(nuclei.y[i])), int(round(nuclei.x[i]))] == i + 1


def test_edge_nucleus_flagged():
    image = render_frame((150, 150), np.array([[3.0, 48.0], [48.0, 48.0]]), 0.645)
    nuclei = find_nuclei(image, 0.645)
    assert len(nuclei) == 2
    assert nuclei.touches_edge[np.argmin(nuclei.y)] and not nuclei.touches_edge[np.argmax(nuclei.y)]


def test_background_only_and_zeros_give_no_nuclei():
    rng = np.random.default_rng(1)
    noise = (33000 + rng.normal(0, 6, (300, 300))).astype(np.uint16)
    assert len(find_nuclei(noise, 0.645)) == 0
    assert len(find_nuclei(np.zeros((64, 64), np.uint16), 0.645)) == 0
    empty = find_nuclei(np.full((64, 64), 500, np.uint16), 0.645, return_labels=True)
    assert len(empty) == 0 and empty.labels.shape == (64, 64) and not empty.labels.any()


def test_float_and_small_frames():
    image = render_frame((40, 50), np.array([[13.0, 16.0]]), 0.645).astype(np.float64)
    assert len(find_nuclei(image, 0.645)) == 1
    assert len(find_nuclei(np.ones((1, 1)), 0.645)) == 0


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((0, 10), np.uint16), "non-empty"),
        (np.zeros((3, 10, 10), np.uint16), "2-D"),
        (np.zeros((10, 10), bool), "dtype bool"),
        (np.zeros((10, 10), complex), "dtype complex"),
        (np.full((10, 10), np.nan), "NaN"),
        (np.full((10, 10), 65535, np.uint16), "saturated"),
    ],
)
def test_bad_frames_give_one_line_errors(image, match):
    with pytest.raises(ImageError, match=match) as e:
        find_nuclei(image, 0.645)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw", [{"pixel_size_um": 0}, {"pixel_size_um": -1.0},
                                {"pixel_size_um": 0.645, "diameter_um": float("nan")}])
def test_bad_sizes(kw):
    with pytest.raises(ImageError, match="give a positive number"):
        find_nuclei(np.zeros((20, 20), np.uint16), **kw)


def test_channel_axis_of_one_is_accepted(synthetic_frame):
    image, centres, px = synthetic_frame
    assert len(find_nuclei(image[None], px)) == len(centres)


def test_real_hela_frame_precision_recall(hela_frames):
    """Against the (error-prone) instance masks, ignoring a 20 px border the masks leave out."""
    import tifffile

    frames = tifffile.imread(hela_frames)
    masks = tifffile.imread(hela_frames.parent / "Fluo_Hela_02_ERR_SEG.tif")
    tp = fp = fn = 0
    for t in (0, 10, 19):
        nuclei = find_nuclei(frames[t], 0.645)
        lab = masks[t]
        h, w = lab.shape
        hit = lab[np.round(nuclei.y).astype(int), np.round(nuclei.x).astype(int)]
        inner = (nuclei.y >= 20) & (nuclei.y < h - 20) & (nuclei.x >= 20) & (nuclei.x < w - 20)
        matched = set()
        for label, ok in zip(hit, inner, strict=True):
            if label > 0 and label not in matched:
                matched.add(label)
                tp += 1
            elif ok:
                fp += 1
        interior = np.unique(lab[20:-20, 20:-20])
        fn += len(set(interior[interior > 0]) - matched)
    assert tp / (tp + fn) >= 0.9 and tp / (tp + fp) >= 0.85, (tp, fp, fn)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 90),
    w=st.integers(1, 90),
    pixel_size_um=st.floats(0.1, 3.0),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_any_small_frame_gives_consistent_nuclei(h, w, pixel_size_um, dtype, seed):
    rng = np.random.default_rng(seed)
    image = (rng.random((h, w)) * 200).astype(dtype)
    if h > 10 and w > 10:
        image[h // 3: h // 2, w // 3: w // 2] += dtype(50)
    nuclei = find_nuclei(image, pixel_size_um, return_labels=True)
    n = len(nuclei)
    for arr in (nuclei.y, nuclei.x, nuclei.area_um2, nuclei.mean_intensity, nuclei.touches_edge):
        assert arr.shape == (n,)
    assert ((nuclei.y >= 0) & (nuclei.y <= h - 1)).all()
    assert ((nuclei.x >= 0) & (nuclei.x <= w - 1)).all()
    assert nuclei.labels.shape == (h, w) and nuclei.labels.max() == n
