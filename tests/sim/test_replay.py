"""The replay microscope against a synthetic movie with known nuclei: window, magnification,
time mapping, blur, loading and errors (fast, no model)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from smartscope.errors import RecordingError
from smartscope.sim import ManualClock
from smartscope.sim.config import SimObjective
from smartscope.sim.replay import ReplayConfig, open_movie, start

T, H, W = 6, 120, 160
PIXEL_UM = 0.5
DT_S = 600.0
BG, NOISE = 100.0, 2.0
SIGMA_PX = 2.5
STEP_PX = 6  # the nucleus moves +6 px in x per frame


def nucleus_rc(t: int) -> tuple[int, int]:
    """Known centre (row, col) of the moving nucleus in recorded frame t."""
    return 40, 30 + STEP_PX * t


FIXED_RC = (90, 120)  # a second nucleus that stays put


def _blob(rc: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return 1000.0 * np.exp(-((yy - rc[0]) ** 2 + (xx - rc[1]) ** 2) / (2 * SIGMA_PX**2))


@pytest.fixture(scope="module")
def movie_path(tmp_path_factory) -> str:
    rng = np.random.default_rng(0)
    frames = []
    for t in range(T):
        img = BG + NOISE * rng.standard_normal((H, W)) + _blob(nucleus_rc(t)) + _blob(FIXED_RC)
        frames.append(np.rint(img).astype(np.uint16))
    path = tmp_path_factory.mktemp("movie") / "movie.tif"
    tifffile.imwrite(path, np.stack(frames))
    return str(path)


def _config(movie: str, **kw) -> ReplayConfig:
    objectives = {
        "10x": SimObjective(magnification=10, pixel_size_um=PIXEL_UM, na=0.3),
        "30x": SimObjective(magnification=30, pixel_size_um=PIXEL_UM / 3, na=0.9),
    }
    values = dict(movie=movie, pixel_size_um=PIXEL_UM, frame_interval_s=DT_S, objective="10x",
                  objectives=objectives, real_exposure_time=False)
    values.update(kw)
    return ReplayConfig(**values)


def _snap(scope) -> np.ndarray:
    scope.core.snapImage()
    return np.asarray(scope.core.getImage()).astype(np.float64)


def _centroid(img: np.ndarray, thresh: float = BG + 200) -> tuple[float, float]:
    w = np.clip(img - thresh, 0, None)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return float((w * yy).sum() / w.sum()), float((w * xx).sum() / w.sum())


def _peak_rc(img: np.ndarray, near: tuple[float, float], r: int = 15) -> tuple[float, float]:
    r0, c0 = max(int(near[0]) - r, 0), max(int(near[1]) - r, 0)
    sub = img[r0:int(near[0]) + r, c0:int(near[1]) + r]
    cy, cx = _centroid(sub)
    return r0 + cy, c0 + cx


def test_time_mapping_shows_the_frame_of_the_sample_time(movie_path):
    clock = ManualClock(0.0)
    with start(_config(movie_path), clock=clock) as scope:
        movie = open_movie(movie_path)
        cases = ((0.0, 0), (DT_S - 1, 0), (DT_S, 1), (3.5 * DT_S, 3), ((T - 1) * DT_S, T - 1))
        for t_s, k in cases:
            clock.set(t_s)
            img = _snap(scope)
            assert np.array_equal(img, movie.frame(k)), f"t={t_s}: expected frame {k}"
            assert scope.frames[-1].movie_frame == k and not scope.frames[-1].past_end
        clock.set(T * DT_S + 10)  # after the recording: the last frame, flagged
        assert np.array_equal(_snap(scope), movie.frame(T - 1))
        assert scope.frames[-1].past_end
        assert scope.movie_frame(7.2 * DT_S) == (T - 1, True)


def test_loop_starts_the_recording_over(movie_path):
    clock = ManualClock(0.0)
    with start(_config(movie_path, at_end="loop"), clock=clock) as scope:
        assert scope.movie_frame((T + 2) * DT_S) == (2, False)
        clock.set((T + 2) * DT_S)
        r, c = _peak_rc(_snap(scope), nucleus_rc(2))
        assert (r, c) == pytest.approx(nucleus_rc(2), abs=0.3)


def test_default_clock_starts_at_the_first_image(movie_path):
    now = [100.0]
    from smartscope.sim.replay import FirstFrameClock

    clock = FirstFrameClock(time_scale=60.0, monotonic=lambda: now[0])
    with start(_config(movie_path), clock=clock) as scope:
        now[0] += 50  # set-up time before the first image does not count
        _snap(scope)
        assert scope.frames[-1].t_s == 0.0
        now[0] += 25  # 25 s real x 60 = 1500 s sample = frame 2
        _snap(scope)
        assert scope.frames[-1].t_s == pytest.approx(1500.0)
        assert scope.frames[-1].movie_frame == 2


def test_stage_pans_a_window_over_the_recording(movie_path):
    with start(_config(movie_path), clock=ManualClock(0.0)) as scope:
        img0 = _snap(scope)
        r0, c0 = _peak_rc(img0, nucleus_rc(0))
        assert (r0, c0) == pytest.approx(nucleus_rc(0), abs=0.3)
        dx_um, dy_um = 10.0, -5.0  # = +20 px, -10 px of the recording
        scope.core.setXYPosition(dx_um, dy_um)
        img = _snap(scope)
        r, c = _peak_rc(img, (nucleus_rc(0)[0] + 10, nucleus_rc(0)[1] - 20))
        # moving the stage by +d um moves the content by -d/p px
        assert (r, c) == pytest.approx((nucleus_rc(0)[0] + 10, nucleus_rc(0)[1] - 20), abs=0.3)
        assert np.array_equal(img[10:, :W - 20], img0[:H - 10, 20:])
        # the recording ends 20 px before the right edge and 10 px below the top: background
        outside = np.concatenate([img[:10].ravel(), img[:, W - 20:].ravel()])
        assert abs(outside.mean() - BG) < 1.5 and 0.5 * NOISE < outside.std() < 2.0 * NOISE


def test_sensor_smaller_than_the_recording(movie_path):
    with start(_config(movie_path, sensor_shape_px=(40, 60)), clock=ManualClock(0.0)) as scope:
        # centre the camera on the fixed nucleus: stage = centre + (px - (N - 1) / 2) * p
        x = (FIXED_RC[1] - (W - 1) / 2) * PIXEL_UM
        y = (FIXED_RC[0] - (H - 1) / 2) * PIXEL_UM
        scope.core.setXYPosition(x, y)
        img = _snap(scope)
        assert img.shape == (40, 60)
        assert _peak_rc(img, (19.5, 29.5)) == pytest.approx((19.5, 29.5), abs=0.3)


def test_objective_change_magnifies_by_the_pixel_size_ratio(movie_path):
    with start(_config(movie_path), clock=ManualClock(0.0)) as scope:
        scope.core.setConfig("Objective", "30x")
        assert scope.core.getPixelSizeUm() == pytest.approx(PIXEL_UM / 3)
        x = (FIXED_RC[1] - (W - 1) / 2) * PIXEL_UM + 4.0  # nucleus 4 um left of the centre
        y = (FIXED_RC[0] - (H - 1) / 2) * PIXEL_UM
        scope.core.setXYPosition(x, y)
        img = _snap(scope)
        expect = ((H - 1) / 2, (W - 1) / 2 - 4.0 / (PIXEL_UM / 3))
        r, c = _peak_rc(img, expect, r=30)
        assert (r, c) == pytest.approx(expect, abs=0.5)
        # the nucleus is 3x wider in camera pixels: second moment of the profile
        row = img[int(round(r)), :] - BG
        xs = np.arange(W)
        w = np.clip(row, 0, None)
        sigma = np.sqrt((w * (xs - c) ** 2).sum() / w.sum())
        assert sigma == pytest.approx(3 * SIGMA_PX, rel=0.15)
        assert scope.magnification("30x") == pytest.approx(3.0)


def test_lower_magnification_reduces_and_shows_background_around(movie_path):
    objectives = {
        "10x": SimObjective(magnification=10, pixel_size_um=PIXEL_UM, na=0.3),
        "5x": SimObjective(magnification=5, pixel_size_um=2 * PIXEL_UM, na=0.15),
    }
    with start(_config(movie_path, objectives=objectives), clock=ManualClock(0.0)) as scope:
        scope.core.setConfig("Objective", "5x")
        img = _snap(scope)
        # the recording fills the middle half of the field; the rest is background
        expect = ((H - 1) / 2 + (FIXED_RC[0] - (H - 1) / 2) / 2,
                  (W - 1) / 2 + (FIXED_RC[1] - (W - 1) / 2) / 2)
        assert _peak_rc(img, expect) == pytest.approx(expect, abs=0.5)
        assert abs(img[:20].mean() - BG) < 1.5


def test_defocus_blurs(movie_path):
    with start(_config(movie_path), clock=ManualClock(0.0)) as scope:
        peak_focus = _snap(scope)[nucleus_rc(0)]
        scope.core.setPosition(10.0)  # 10 um off focus at NA 0.3: sigma 1.8 um = 3.6 px
        blurred = _snap(scope)
        assert blurred[nucleus_rc(0)] < 0.6 * peak_focus
        assert _peak_rc(blurred, nucleus_rc(0), r=20) == pytest.approx(nucleus_rc(0), abs=0.5)
        assert scope.blur_um("10x", 10.0) == pytest.approx(0.6 * 0.3 * 10)


def test_folder_of_frames_with_a_pattern(movie_path, tmp_path):
    movie = open_movie(movie_path)
    for t in range(T):
        tifffile.imwrite(tmp_path / f"P1_T{t + 1}_h2b.tif", movie.frame(t))
        tifffile.imwrite(tmp_path / f"P1_T{t + 1}_tubulin.tif", np.zeros((H, W), np.uint16))
    tifffile.imwrite(tmp_path / "P1_T10_h2b.tif", movie.frame(0))  # natural order: 10 after 6
    with pytest.raises(RecordingError, match="2 series .*e.g. '\\*_h2b.tif' or '\\*_tubulin.tif'"):
        open_movie(tmp_path)  # two channels in one folder: say how to choose one
    folder = open_movie(tmp_path, "*_h2b.tif")
    assert folder.n_frames == T + 1 and folder.shape == (H, W)
    assert np.array_equal(folder.frame(5), movie.frame(5))
    assert np.array_equal(folder.frame(6), movie.frame(0))


def test_ndtiff_movie_carries_pixel_size_and_interval(tmp_path):
    from ndstorage import NDTiffDataset

    ds = NDTiffDataset(str(tmp_path), name="rec", writable=True)
    ds.initialize({})
    for t in range(3):
        ds.put_image({"time": t}, np.full((32, 48), 100 + t, np.uint16),
                     {"PixelSize_um": 0.65, "ElapsedTime-ms": 120_000.0 * t})
    ds.finish()
    ds.close()
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    movie = open_movie(folder)
    assert (movie.n_frames, movie.shape) == (3, (32, 48))
    assert movie.pixel_size_um == pytest.approx(0.65)
    assert movie.frame_interval_s == pytest.approx(120.0)
    assert movie.frame(2)[0, 0] == 102
    movie.close()


@pytest.mark.parametrize("shape, needle", [((H, W), "not a movie"),
                                           ((2, 3, H, W), "is not T x Y x X")])
def test_a_movie_that_is_not_t_y_x_is_refused(tmp_path, shape, needle):
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, np.zeros(shape, np.uint16), photometric="minisblack")
    with pytest.raises(RecordingError, match=needle) as e:
        open_movie(path)
    assert "bad.tif" in str(e.value) and "\n" not in str(e.value)


def test_missing_movie_and_unknown_pixel_size(tmp_path, movie_path):
    with pytest.raises(RecordingError, match="movie not found"):
        open_movie(tmp_path / "nope.tif")
    with pytest.raises(RecordingError, match="pixel size of the recording is not known"):
        with start(ReplayConfig(movie=movie_path, frame_interval_s=60)):
            pass
