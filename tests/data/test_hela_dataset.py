"""The labelled HeLa data set in the repository is self-consistent and its split is clean."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile

from smartscope import phases

DATA = Path(__file__).resolve().parents[2] / "data" / "hela_phases"
FIVE = {"interphase": "interphase", "prometaphase": "prometaphase", "metaphase": "metaphase",
        "anaphase": "anaphase", "telophase": "anaphase"}
LABELS = set(phases.ALL_PHASES) | {"junk"}


@pytest.fixture(scope="module")
def labels() -> list[dict]:
    with open(DATA / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _files(root: Path) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for split in ("train", "test"):
        out[split] = Counter(p.parent.name for p in (root / split).glob("*/*.tif"))
    return out


def test_labels_are_known_phases_and_splits(labels):
    assert labels, "labels.csv is empty"
    for row in labels:
        assert row["phase"] in LABELS
        assert row["split"] in ("train", "test")
        assert row["class5"] == FIVE.get(row["phase"], "")
        assert 0 <= int(row["frame"]) < 20
        assert 0 <= float(row["y"]) < 700 and 0 <= float(row["x"]) < 1100


def test_label_keys_are_unique(labels):
    keys = Counter((r["frame"], r["y"], r["x"]) for r in labels)
    assert max(keys.values()) == 1


def test_five_class_folders_match_labels(labels):
    want = {s: Counter(FIVE[r["phase"]] for r in labels if r["split"] == s and r["phase"] in FIVE)
            for s in ("train", "test")}
    assert _files(DATA) == want
    assert "apoptosis" not in want["train"]  # none seen: no empty class folder either


def test_seven_class_folders_match_labels(labels):
    want = {s: Counter(r["phase"] for r in labels if r["split"] == s and r["phase"] != "junk")
            for s in ("train", "test")}
    assert _files(DATA / "seven") == want


def test_every_class_is_in_the_test_split(labels):
    test = {FIVE[r["phase"]] for r in labels if r["split"] == "test" and r["phase"] in FIVE}
    assert test == {"interphase", "prometaphase", "metaphase", "anaphase"}


def test_no_cell_in_both_splits(labels):
    groups: dict[str, set[str]] = {}
    for r in labels:
        groups.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in groups.values())
    # and no train label sits where a test label is in the same or an adjacent frame
    pos = {s: np.array([(int(r["frame"]), float(r["y"]), float(r["x"])) for r in labels
                        if r["split"] == s]) for s in ("train", "test")}
    for f, y, x in pos["test"]:
        near = pos["train"][np.abs(pos["train"][:, 0] - f) <= 1]
        assert np.hypot(near[:, 1] - y, near[:, 2] - x).min() >= 30.0


def test_index_matches_labelled_crops(labels):
    with open(DATA / "index.csv", newline="") as fh:
        index = list(csv.DictReader(fh))
    assert len(index) == sum(r["phase"] != "junk" for r in labels)
    for row in index:
        assert (DATA / row["file"]).is_file()
        assert row["split"] in row["file"].split("/")[:2]


def test_crops_are_raw_64px_uint16():
    files = sorted(DATA.glob("t*/*/*.tif"))
    assert files
    for path in files[::25]:
        crop = tifffile.imread(path)
        assert crop.shape == (64, 64) and crop.dtype == np.uint16
        assert crop.max() > crop.min()


def test_unlabelled_pool_is_outside_the_test_region():
    with np.load(DATA / "unlabelled.npz") as z:
        crops, x = z["crops"], z["x"]
    assert crops.ndim == 3 and crops.shape[1:] == (64, 64) and crops.dtype == np.uint16
    assert len(crops) == len(x) >= 100
    assert float(x.max()) < 800.0 - 30.0
