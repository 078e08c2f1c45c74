"""Replay inputs its first version mishandled (found by trying odd movies and label files): each
case must be refused with one line naming the file and what to change, or read correctly
(fast, no model, no microscope)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from smartscope.errors import RecordingError
from smartscope.sim.replay import open_movie, read_labels

H, W = 48, 64
BG, PEAK = 100.0, 1000.0
RC = (20, 30)  # a nucleus


def _frames(t: int = 3) -> np.ndarray:
    """t frames of background BG with one Gaussian nucleus of height PEAK at RC."""
    yy, xx = np.mgrid[0:H, 0:W]
    blob = PEAK * np.exp(-((yy - RC[0]) ** 2 + (xx - RC[1]) ** 2) / (2 * 3.0**2))
    return np.stack([BG + blob] * t)


def _one_line_error(path: Path, needle: str) -> str:
    with pytest.raises(RecordingError, match=needle) as e:
        m = open_movie(path)
        m.frame(0)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --- what a movie holds -------------------------------------------------------------------


def test_rgb_image_and_stack_are_refused_not_read_as_frames(tmp_path):
    rgb = np.stack([_frames(1)[0].astype(np.uint8)] * 3, axis=-1)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")  # (H, W, 3): was 48 frames
    tifffile.imwrite(tmp_path / "rgbs.tif", np.stack([rgb] * 4), photometric="rgb")
    for name in ("rgb.tif", "rgbs.tif"):
        assert name in _one_line_error(tmp_path / name, "colour")


def test_channel_axis_is_refused_but_planar_three_frame_stack_is_a_movie(tmp_path):
    data = _frames(2).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cyx.tif", data, metadata={"axes": "CYX"})
    _one_line_error(tmp_path / "cyx.tif", "several channels")
    # tifffile writes (3, Y, X) as planar RGB unless told otherwise: still 3 grey frames
    tifffile.imwrite(tmp_path / "t3.tif", _frames(3).astype(np.uint16), photometric="rgb",
                     planarconfig="separate")
    m = open_movie(tmp_path / "t3.tif")
    assert (m.n_frames, m.shape) == (3, (H, W))


def test_frames_smaller_than_the_camera_minimum_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "tiny.tif", np.zeros((4, 8, 8), np.uint16),
                     photometric="minisblack")
    assert "8 x 8 px" in _one_line_error(tmp_path / "tiny.tif", "too small")


@pytest.mark.parametrize("dtype, scale, offset", [
    (np.float32, 1 / 2000, 0.0),    # normalised 0-1: was rounded to a 0/1 image
    (np.float64, 1.0, -500.0),      # negative background: was clipped to 0
    (np.int16, 1.0, -500.0),
    (np.int32, 100.0, 0.0),         # beyond 16 bits: was clipped
])
def test_other_pixel_types_keep_their_contrast(tmp_path, dtype, scale, offset):
    data = (_frames() * scale + offset).astype(dtype)
    tifffile.imwrite(tmp_path / "m.tif", data, photometric="minisblack")
    img = open_movie(tmp_path / "m.tif").frame(1).astype(float)
    src = data[1].astype(float).ravel()
    a, b = np.polyfit(src, img.ravel(), 1)
    assert np.abs(img.ravel() - (a * src + b)).max() <= 1.0  # linear: nothing clipped or lost
    assert img[RC] - np.median(img) > 500  # the nucleus stands out by hundreds of levels


def test_uint16_and_integer_floats_are_kept_as_they_are(tmp_path):
    data = np.rint(_frames())
    tifffile.imwrite(tmp_path / "u16.tif", data.astype(np.uint16), photometric="minisblack")
    tifffile.imwrite(tmp_path / "f32.tif", data.astype(np.float32), photometric="minisblack")
    a = open_movie(tmp_path / "u16.tif").frame(2)
    b = open_movie(tmp_path / "f32.tif").frame(2)
    assert b.dtype == np.uint16 and np.array_equal(a, b)


def test_nan_pixels_are_filled_and_an_all_nan_movie_is_refused(tmp_path):
    data = _frames().astype(np.float32)
    data[1, 0:5, 0:5] = np.nan
    data[1, 40, 60] = np.inf
    tifffile.imwrite(tmp_path / "nan.tif", data, photometric="minisblack")
    with np.errstate(all="raise"):
        img = open_movie(tmp_path / "nan.tif").frame(1)
    assert img[0:5, 0:5].tolist() == [[BG] * 5] * 5 and img[40, 60] == BG
    tifffile.imwrite(tmp_path / "allnan.tif", np.full((2, H, W), np.nan, np.float32),
                     photometric="minisblack")
    _one_line_error(tmp_path / "allnan.tif", "no finite pixel")


# --- folders ------------------------------------------------------------------------------


def _folder(tmp_path: Path, n: int = 3) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(_frames(n).astype(np.uint16)):
        tifffile.imwrite(folder / f"f{i}.tif", img)
    return folder


def test_folder_frame_of_another_size_or_unreadable_is_named_at_open(tmp_path):
    folder = _folder(tmp_path)
    tifffile.imwrite(folder / "f3.tif", np.zeros((H - 8, W), np.uint16))
    msg = _one_line_error(folder, "give frames of one size")
    assert "f3.tif" in msg and f"{H - 8} x {W}" in msg
    (folder / "f3.tif").write_text("not a TIFF")
    assert "f3.tif" in _one_line_error(folder, "not a readable TIFF")


def test_folder_ignores_non_tiff_files_and_hints_a_working_pattern(tmp_path):
    folder = _folder(tmp_path)
    (folder / "notes.txt").write_text("x")
    (folder / "f9.tif.bak").write_text("an editor's backup")
    assert open_movie(folder).n_frames == 3
    for i in range(3):
        tifffile.imwrite(folder / f"f{i}_tub.tif", np.zeros((H, W), np.uint16))
    msg = _one_line_error(folder, "2 series")
    assert "'*[0-9].tif' or '*_tub.tif'" in msg  # each selects exactly its own series


# --- labels -------------------------------------------------------------------------------


def _labels(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_labels_from_a_spreadsheet_are_read(tmp_path):
    # byte-order mark, spaces and capitals in the header, frames written as floats
    path = _labels(tmp_path, "Frame, Y, X, Phase,cell\n1.0,20.5,30,Metaphase,7\n",
                   encoding="utf-8-sig")
    (lab,) = read_labels(path, 3, (H, W))
    assert (lab.frame, lab.y_px, lab.x_px, lab.phase) == (1, 20.5, 30.0, "metaphase")


@pytest.mark.parametrize("text, needle", [
    ("", "columns frame, y, x, phase are missing .*empty file"),
    ("t;row;col;label\n0;1;1;metaphase\n", "found: 't;row;col;label'"),
    ("frame,y,x,phase\n", "no labelled nucleus"),
    ("frame,y,x,phase\n1.5,2,2,metaphase\n", "line 2: frame '1.5' is not a whole number"),
])
def test_bad_labels_are_one_line(tmp_path, text, needle):
    with pytest.raises(RecordingError, match=needle) as e:
        read_labels(_labels(tmp_path, text), 3, (H, W))
    assert "labels.csv" in str(e.value) and "\n" not in str(e.value)


def test_a_binary_file_given_as_labels_is_one_line(tmp_path):
    path = tmp_path / "labels.csv"
    tifffile.imwrite(path, np.full((H, W), 0xA0A0, np.uint16))
    with pytest.raises(RecordingError, match="not a readable CSV"):
        read_labels(path, 3, (H, W))


# --- TIFF layouts -------------------------------------------------------------------------


def test_pages_written_one_by_one_are_frames(tmp_path):
    frames = (_frames(4) + np.arange(4)[:, None, None]).astype(np.uint16)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as w:  # each page its own series
        for f in frames:
            w.write(f, photometric="minisblack")
    m = open_movie(tmp_path / "pages.tif")  # was: "one image, not a movie"
    assert (m.n_frames, m.shape) == (4, (H, W))
    assert all(np.array_equal(m.frame(i), frames[i]) for i in (3, 0, 2))
    with tifffile.TiffWriter(tmp_path / "odd.tif") as w:
        w.write(frames[0], photometric="minisblack")
        w.write(frames[1][:-8], photometric="minisblack")
    assert "page 1" in _one_line_error(tmp_path / "odd.tif", "one size")


def test_compressed_stack_is_read_page_by_page(tmp_path):
    from smartscope.sim.replay.pages import PageMovie

    frames = (_frames(5) + np.arange(5)[:, None, None]).astype(np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", frames, compression="zlib", photometric="minisblack")
    m = open_movie(tmp_path / "z.tif")
    assert isinstance(m, PageMovie)  # was: the whole movie decoded into memory at open
    assert m.n_frames == 5 and np.array_equal(m.frame(4), frames[4])
    m.close()
