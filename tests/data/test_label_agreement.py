"""The label-agreement script: kappa and agreement figures, blind sheets, the recorded pass."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
PHASES = ("interphase", "prophase", "prometaphase", "metaphase", "anaphase", "telophase",
          "apoptosis")


@pytest.fixture(scope="module")
def la():
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location("label_agreement",
                                                      SCRIPTS / "label_agreement.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_kappa_of_a_hand_computed_table(la):
    # n 50, p_o = 35/50 = 0.7; rows 25/25, columns 30/20: p_e = (25*30 + 25*20)/50^2 = 0.5
    assert la.cohen_kappa(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)
    # three classes: p_o = 7/10 = 0.7; rows 4/3/3, columns 3/4/3: p_e = (12+12+9)/100 = 0.33
    cm = np.array([[2, 1, 1], [0, 3, 0], [1, 0, 2]])
    assert la.cohen_kappa(cm) == pytest.approx((0.7 - 0.33) / 0.67)
    assert la.cohen_kappa(np.diag([3, 4, 5])) == pytest.approx(1.0)


def test_agreement_counts_per_class_on_the_five_class_task(la):
    first = ["metaphase", "metaphase", "telophase", "anaphase", "interphase", "prometaphase"]
    second = ["metaphase", "anaphase", "anaphase", "uncertain", "interphase", "metaphase"]
    a = la.agreement([la.five(x) for x in first], [la.five(x) for x in second])
    assert (a["n"], a["agree"]) == (6, 3)  # telophase == anaphase on the five-class task
    assert a["per_class"]["anaphase"] == {"n_first": 2, "n_second": 2, "same": 1, "share": 0.5,
                                          "specific_agreement": 0.5}
    assert a["per_class"]["metaphase"]["share"] == 0.5
    assert a["per_class"]["uncertain"]["n_second"] == 1
    cm = np.array(a["confusion_first_rows"])
    assert cm.sum() == 6 and np.trace(cm) == 3
    assert a["kappa"] == pytest.approx(la.cohen_kappa(cm), abs=1e-4)


def test_selection_is_seeded_and_takes_every_mitotic_test_crop(la):
    index = [{"split": "test", "phase": p, "file": f"{p}{i}"} for p in PHASES[:6]
             for i in range(3)] + [{"split": "train", "phase": "metaphase", "file": "tr"}]
    index += [{"split": "test", "phase": "interphase", "file": f"i{i}"} for i in range(20)]
    a, b = la.select(index, 5, seed=0), la.select(index, 5, seed=0)
    assert a == b and a != la.select(index, 5, seed=1)
    assert sum(r["phase"] == "interphase" for r in a) == 5
    assert {r["file"] for r in a if r["phase"] != "interphase"} == {
        f"{p}{i}" for p in PHASES[1:6] for i in range(3)}


def _text_chunks(png: bytes) -> bytes:
    out, pos = b"", 8
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind = png[pos + 4:pos + 8]
        if kind in (b"tEXt", b"iTXt", b"zTXt"):
            out += png[pos + 8:pos + 8 + n]
        pos += 12 + n
    return out


def test_sheets_show_ids_only_and_the_key_holds_no_label(la, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(0)
    frames = rng.integers(100, 4000, size=(4, 160, 160)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "frames.tif", frames, photometric="minisblack")
    fields = ["file", "split", "phase", "class5", "frame", "label_y", "label_x", "y", "x"]
    rows = [[f"test/{p}/c{i}.tif", "test", p, la.five(p), i % 4, 40 + 20 * i, 80, 40 + 20 * i, 80]
            for i, p in enumerate(PHASES[:6])]
    with open(tmp_path / "index.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([fields, *rows])
    out = tmp_path / "sheets"
    assert la.main(["sheets", "--frames", str(tmp_path / "frames.tif"), "--out", str(out),
                    "--index", str(tmp_path / "index.csv"), "--interphase", "1"]) == 0
    words = (*PHASES, "prometa", "telo", "test/", ".tif")
    key = (out / "key" / "key.csv").read_text()
    by_id = (out / la.BY_ID).read_text()
    for text in (key, by_id):
        assert not any(w in text for w in words)
    sheet = out / "sheet_01.png"
    assert not any(w.encode() in _text_chunks(sheet.read_bytes()) for w in words)
    # every string drawn on a sheet is an anonymous id or a frame offset
    ids = [r["review_id"] for r in csv.DictReader(open(out / "key" / "key.csv"))]
    trip = la.triplet(frames.astype(float), 1, 60.0, 80.0)
    fig = la.sheet_figure([(rid, trip) for rid in ids])
    drawn = {t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))} - {""}
    assert drawn == {"t-1", "t+1"} | {f"{rid}  t" for rid in ids}


def test_record_refuses_an_unknown_answer(la, tmp_path):
    (tmp_path / "key").mkdir()
    (tmp_path / "key" / "key.csv").write_text(
        "review_id,frame,label_y,label_x,y,x\nr001,3,10.0,20.0,10.1,20.2\n")
    (tmp_path / la.BY_ID).write_text("review_id,second_label,note\nr001,metafase,\n")
    to = tmp_path / "second.csv"
    assert la.main(["record", "--sheets", str(tmp_path), "--to", str(to)]) == 2
    assert not to.exists()
    (tmp_path / la.BY_ID).write_text("review_id,second_label,note\nr001,Metaphase,a bar\n")
    assert la.main(["record", "--sheets", str(tmp_path), "--to", str(to)]) == 0
    assert to.read_text().splitlines()[1] == "3,10.0,20.0,r001,metaphase,a bar"


def test_the_recorded_second_pass_covers_the_reviewed_test_crops(la):
    second = list(csv.DictReader(open(REPO / "data" / "hela_phases" / "second_pass.csv")))
    test = {la.key_of(r): r for r in la.read_csv(REPO / "data" / "hela_phases" / "index.csv")
            if r["split"] == "test"}
    assert len({r["review_id"] for r in second}) == len(second)
    assert all(r["second_label"] in la.ANSWERS for r in second)
    reviewed = [test[la.key_of(r)] for r in second]  # KeyError: a row with no test crop
    assert {r["file"] for r in test.values() if r["phase"] != "interphase"} <= {
        r["file"] for r in reviewed}
