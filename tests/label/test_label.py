"""Labelling: pool reading and time links, order, the labelled folder, the session, the server's
security rules (all without a browser; see test_browser.py for the page itself)."""

from __future__ import annotations

import csv
import http.client
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from smartscope.cli import main
from smartscope.errors import TrainingDataError
from smartscope.label import JUNK, LabelStore, appearance_order, load_pool, uncertainty
from smartscope.label.session import build_session
from tests.label.conftest import CLASSES, make_pool

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "models" / "hela_h2b_5class"


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_pool_links_the_same_nucleus_in_the_previous_and_next_frame(pool):
    items = load_pool(pool)
    assert len(items) == 30
    mid = items["s0t001n003"]
    assert (mid.previous, mid.next) == ("s0t000n003", "s0t002n003")
    assert items["s0t000n003"].previous is None and items["s0t002n003"].next is None
    # 2 px a frame at 0.645 um/px is 1.3 um; nothing links when the limit is below that
    assert all(i.previous is None for i in load_pool(pool, link_um=1.0).values())


def test_pool_without_pixel_size_has_no_links(pool):
    text = (pool / "index.csv").read_text().replace(",0.645", ",")
    (pool / "index.csv").write_text(text)
    assert all(i.previous is None and i.next is None for i in load_pool(pool).values())


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("crops/s0t000n001.tif", "../outside.tif"), "outside the pool folder"),
    (lambda s: s.replace("s0t000n001,", "../evil,", 1), "crop_id='../evil'"),
    (lambda s: s.replace("s0t000n001,", "s0t000n000,", 1), "repeats"),
    (lambda s: s.replace(",200,", ",bright,", 1), "is not a number"),
    (lambda s: s.replace("mean_intensity", "brightness"), "missing column(s) mean_intensity"),
])
def test_bad_pool_is_one_clear_error(pool, edit, message):
    index = pool / "index.csv"
    index.write_text(edit(index.read_text()))
    with pytest.raises(TrainingDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_pool(pool)


def test_missing_index_says_how_to_make_a_pool(tmp_path):
    with pytest.raises(TrainingDataError, match="smartscope crops"):
        load_pool(tmp_path)


def test_without_a_model_bright_small_nuclei_come_first(pool):
    order = appearance_order(list(load_pool(pool).values()))
    assert [c[-3:] for c in order[:3]] == ["009"] * 3  # brightest and smallest, all frames
    assert [c[-3:] for c in order[-3:]] == ["000"] * 3


def test_uncertainty_margin_and_entropy():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.7, 0.2, 0.1]])
    np.testing.assert_allclose(uncertainty(p, "margin"), [0.0, 1.0, 1.0, 0.5])
    h = uncertainty(p, "entropy")
    np.testing.assert_allclose(h[[0, 2]], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(h[1], np.log(2) / np.log(3))
    assert 0 < h[3] < 1
    with pytest.raises(ValueError, match="use 'margin' or 'entropy'"):
        uncertainty(p, "variance")  # type: ignore[arg-type]


def test_store_assign_undo_resume_and_junk(pool, tmp_path):
    items = load_pool(pool)
    out = tmp_path / "labelled"
    store = LabelStore(out, CLASSES)
    store.assign(items["s0t000n001"], "metaphase", "metaphase", 0.91)
    store.assign(items["s0t000n002"], JUNK)
    store.assign(items["s0t000n003"], "interphase")
    store.assign(items["s0t000n003"], "anaphase")  # relabel moves the file
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.tif")) == [
        "anaphase/s0t000n003.tif", "metaphase/s0t000n001.tif"]
    assert not list(out.rglob(".*")) and not (out / JUNK).exists()  # no temporary left
    np.testing.assert_array_equal(
        __import__("tifffile").imread(out / "metaphase" / "s0t000n001.tif"),
        __import__("tifffile").imread(pool / "crops" / "s0t000n001.tif"))
    rows = _rows(out)
    assert [(r["crop_id"], r["label"]) for r in rows] == [
        ("s0t000n001", "metaphase"), ("s0t000n002", JUNK), ("s0t000n003", "anaphase")]
    assert rows[0]["predicted"] == "metaphase" and rows[0]["confidence"] == "0.9100"
    assert store.undo().crop_id == "s0t000n003"
    assert not (out / "anaphase" / "s0t000n003.tif").exists()
    # a restart resumes; a file left behind by a stop between the two writes is removed
    (out / "interphase").mkdir(exist_ok=True)
    (out / "interphase" / "s0t000n005.tif").write_bytes(b"stale")
    again = LabelStore(out, CLASSES)
    assert again.labelled == {"s0t000n001": "metaphase", "s0t000n002": JUNK}
    assert again.reconcile(items) == 1 and not (out / "interphase" / "s0t000n005.tif").exists()
    with pytest.raises(TrainingDataError, match="use one of interphase"):
        again.assign(items["s0t000n004"], "prophase")


@pytest.mark.parametrize("classes, message", [
    (["a"], "2 to 9"), ([f"c{k}" for k in range(10)], "2 to 9"), (["a", "junk"], "junk"),
    (["a", "../b"], "not usable"), (["a", "A"], "repeats"),
])
def test_bad_classes(tmp_path, classes, message):
    with pytest.raises(TrainingDataError, match=message):
        LabelStore(tmp_path / "out", classes)


def test_session_pages_resume_skip_and_undo(pool, tmp_path):
    out = tmp_path / "labelled"
    s = build_session(pool, CLASSES, out)
    first = [c["id"] for c in s.page(5)["rows"][0]["cards"]]
    assert len(first) == 5 and all(c.endswith("009") or c.endswith("008") for c in first[:5])
    s.label(first[:2], "metaphase")
    s.skip(first[2])
    nxt = [c["id"] for c in s.page(5)["rows"][0]["cards"]]
    assert nxt[:2] == first[3:5] and first[2] not in nxt
    assert s.undo() == first[1]
    assert s.page(1)["rows"][0]["cards"][0]["id"] == first[1]  # undone comes back first
    resumed = build_session(pool, CLASSES, out)  # a restart: only the label kept counts
    assert resumed.state()["labelled"] == 1
    assert first[0] not in [c["id"] for c in resumed.page(30)["rows"][0]["cards"]]


def test_run_probabilities_order_least_certain_first_in_rows_by_class(tmp_path):
    pool = make_pool(tmp_path / "pool", probs=True)
    s = build_session(pool, CLASSES, tmp_path / "labelled")
    page = s.page(6)
    # k = 9 predicted interphase, k = 8 anaphase: one row each, in the order of the classes
    assert [r["predicted"] for r in page["rows"]] == ["interphase", "anaphase"]
    ids = [c["id"] for r in page["rows"] for c in r["cards"]]
    assert sorted(c[-3:] for c in ids) == ["008"] * 3 + ["009"] * 3  # least certain: k = 8, 9


def test_model_order_uses_the_bundle(pool, tmp_path):
    if not (BUNDLE / "model.tflite").is_file():
        pytest.skip("shipped model bundle missing")
    s = build_session(pool, CLASSES, tmp_path / "labelled", model=BUNDLE, method="entropy")
    assert s.state()["ordered_by"] == "uncertainty" and len(s.predictions) == 30
    assert {p for p, _ in s.predictions.values()} <= set(
        json.loads((BUNDLE / "model_card.json").read_text())["classes"])


# -- the server -----------------------------------------------------------------------------------

def _get(server, path, host=None, headers=None, method="GET", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        h = {"Host": f"127.0.0.1:{server.port}" if host is None else host, **(headers or {})}
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def test_server_binds_localhost_and_needs_token_and_host(session, serve):
    server = serve(session)
    assert server.server_address[0] == "127.0.0.1"
    t = server.token
    assert len(t) >= 32
    status, body, headers = _get(server, f"/?token={t}")
    assert status == 200 and b"app.js?token=" + t.encode() in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert _get(server, f"/?token={t}", host=f"localhost:{server.port}")[0] == 200
    for path in ("/", "/?token=wrong", "/app.js", "/api/page", "/crop/s0t000n000.png"):
        assert _get(server, path)[0] == 403, path
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1:1", ""):
        assert _get(server, f"/?token={t}", host=host)[0] == 403, host


def test_server_serves_only_pool_crops_as_png(session, serve, pool):
    server = serve(session)
    t = server.token
    status, png, headers = _get(server, f"/crop/s0t001n002.png?token={t}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (64, 64)
    # a crop file that is not an image is never passed through: no PNG, and none of its bytes
    (pool / "crops" / "s0t002n009.tif").write_bytes(b"<script>alert(1)</script>")
    status, body, _ = _get(server, f"/crop/s0t002n009.png?token={t}")
    assert status == 500 and b"<scr" not in body
    (pool / "secret.png").write_bytes(b"x")
    for path in ("/crop/nope.png", "/crop/../index.csv", "/crop/..%2Findex.csv.png",
                 "/crop/%2e%2e/secret.png", "/../secret.png", "/crops/s0t000n000.tif",
                 "/index.csv", "/crop/s0t000n000.tif"):
        status, body, _ = _get(server, path + f"?token={t}")
        assert status == 404 and b"secret" not in body and b"crop_id" not in body, path


def test_server_writes_only_labels_into_the_labelled_folder(session, serve, tmp_path):
    server = serve(session)
    h = {"X-Token": server.token, "Content-Type": "application/json"}
    ok = _get(server, "/api/label", headers=h, method="POST",
              body=json.dumps({"ids": ["s0t000n000"], "label": "anaphase"}))
    assert ok[0] == 200 and json.loads(ok[1])["labelled"] == 1
    for body, status in [({"ids": ["../../x"], "label": "anaphase"}, 404),
                         ({"ids": ["s0t000n001"], "label": "../../x"}, 400),
                         ({"ids": "s0t000n001", "label": "anaphase"}, 400)]:
        assert _get(server, "/api/label", headers=h, method="POST",
                    body=json.dumps(body))[0] == status, body
    form = {**h, "Content-Type": "application/x-www-form-urlencoded"}
    assert _get(server, "/api/label", headers=form, method="POST", body="ids=x")[0] == 415
    assert _get(server, "/api/label", headers=h, method="POST", body="x" * 70000)[0] == 413
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                     if p.is_file() and "labelled" in p.parts)
    assert written == ["labelled/anaphase/s0t000n000.tif", "labelled/labels.csv"]


def test_cli_bad_input_is_one_line(pool, tmp_path, capsys):
    assert main(["label", str(pool), "--classes", "a", "--out", str(tmp_path / "o"),
                 "--no-open"]) == 2
    assert main(["label", str(tmp_path / "none"), "--classes", "a,b", "--out",
                 str(tmp_path / "o"), "--no-open"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "2 to 9" in err[0] and "smartscope crops" in err[1]


def test_labelled_folder_must_be_new_ours_or_outside_the_pool(pool, tmp_path):
    from smartscope.errors import OutputError

    with pytest.raises(OutputError, match="overlaps the input"):
        build_session(pool, CLASSES, pool / "labelled")
    foreign = tmp_path / "hand_sorted"
    (foreign / "interphase").mkdir(parents=True)
    (foreign / "interphase" / "s0t000n001.tif").write_bytes(b"mine")
    with pytest.raises(OutputError, match="not made by `smartscope label`"):
        build_session(pool, CLASSES, foreign)
    assert (foreign / "interphase" / "s0t000n001.tif").read_bytes() == b"mine"


def test_library_messages_name_arguments_and_the_cli_its_flags(pool, tmp_path):
    """A Python caller reads the argument names; ``smartscope label`` passes its flags."""
    from smartscope.commands.label import CLI_NAMES
    from smartscope.errors import OutputError

    foreign = tmp_path / "hand_sorted"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    for options, out, classes, method in ((None, "out ", "classes ", "method "),
                                          (CLI_NAMES, "--out ", "--classes ", "--uncertainty ")):
        with pytest.raises(OutputError) as e:
            build_session(pool, CLASSES, foreign, options=options)
        assert str(e.value).startswith(out + str(foreign))
        with pytest.raises(TrainingDataError) as e:
            build_session(pool, ["one"], tmp_path / "l", options=options)
        assert str(e.value).startswith(classes + "'one'")
        with pytest.raises(TrainingDataError) as e:
            build_session(pool, CLASSES, tmp_path / "l", method="random", options=options)
        assert str(e.value).startswith(method + "'random'")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_cli_serves_labels_and_stops_cleanly(pool, tmp_path, sig):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "labelled"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartscope", "label", str(pool), "--classes", ",".join(CLASSES),
         "--out", str(out), "--no-open"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        # started as a script's background job is (SIGINT ignored, inherited): Ctrl-C or
        # kill -INT must still end the session
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].split()[-1]
        assert lines[1].startswith("labelling page") and url.startswith("http://127.0.0.1:")
        port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/label", body=json.dumps({"ids": ["s0t000n004"],
                                                           "label": "metaphase"}),
                     headers={"X-Token": token, "Content-Type": "application/json"})
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(getattr(signal, sig))
        rest = proc.communicate(timeout=20)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "metaphase 1" in rest and _rows(out)[0]["crop_id"] == "s0t000n004"
