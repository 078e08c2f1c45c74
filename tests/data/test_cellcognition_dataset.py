"""The CellCognition set in the repository matches its index, and its split is by cell."""

from __future__ import annotations

import csv
import importlib.util
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "cellcognition_h2b"


@pytest.fixture(scope="module")
def index() -> list[dict]:
    with open(DATA / "index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def build():
    """The build script as a module (its split rule is what the folders were made with)."""
    path = REPO / "scripts" / "build_cellcognition_dataset.py"
    spec = importlib.util.spec_from_file_location("build_cellcognition_dataset", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folders_match_the_index(index):
    for part in ("train", "test"):
        want = Counter(r["class5"] for r in index if r["split"] == part and r["class5"])
        got = Counter(p.parent.name for p in (DATA / part).glob("*/*.tif"))
        assert got == want, part
        seven = Counter(r["phase"] for r in index if r["split"] == part)
        assert Counter(p.parent.name for p in (DATA / "seven" / part).glob("*/*.tif")) == seven
        with open(DATA / part / "groups.csv", newline="") as fh:
            groups = {r["file"]: r["group"] for r in csv.DictReader(fh)}
        cells = {r["file"]: r["cell"] for r in index}
        assert {f: cells[Path(f).name] for f in groups} == groups


def test_a_cell_is_on_one_side_only(index):
    sides: dict[str, set[str]] = {}
    for r in index:
        sides.setdefault(r["cell"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())


def test_apoptosis_of_both_positions_on_both_sides(index):
    apo = [r for r in index if r["class5"] == "apoptosis"]
    for pos in ("13", "46"):
        for part in ("train", "test"):
            cells = {r["cell"] for r in apo if r["position"] == pos and r["split"] == part}
            assert cells, (pos, part)


def test_the_split_rule_reproduces_the_index(index, build):
    rows = [{"cc_class": r["cellcognition_class"], "position": int(r["position"]),
             "x": int(r["x"]), "cell": r["cell"]} for r in index]
    names = sorted({r["cell"] for r in rows})
    groups = [names.index(r["cell"]) for r in rows]
    assert build.assign_split(rows, groups) == [r["split"] for r in index]


def test_no_nucleus_is_on_both_sides_by_position_time_and_centre(index, build):
    """Independent of the cell ids: no test crop has a training crop of the same position whose
    centre is within the linking distance a few frames apart (the same nucleus under two ids
    would be a leak). The nearest such pair today is two neighbours 42 px apart."""
    crops = [(r["split"], int(r["position"]), int(r["time"]), int(r["x"]), int(r["y"]))
             for r in index if r["split"] in ("train", "test")]
    train = [c for c in crops if c[0] == "train"]
    for _, pos, t, x, y in (c for c in crops if c[0] == "test"):
        for _, pos2, t2, x2, y2 in train:
            if pos2 == pos and abs(t2 - t) <= build.LINK_FRAMES:
                assert (x2 - x) ** 2 + (y2 - y) ** 2 > build.LINK_PX ** 2, (pos, t, x, y)
