"""The labelling page in a real browser: headless Chromium, driven over the DevTools protocol,
labels 20 crops with the keyboard (classes, junk, skip, undo, a page change) and the labelled
folder and labels.csv are checked. Skips when Chromium is not installed."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from smartscope.label.session import build_session
from tests.label.conftest import CLASSES, make_pool

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("headless_chromium",
                                               REPO / "scripts" / "headless_chromium.py")
assert _spec is not None and _spec.loader is not None
chromium = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chromium)

pytestmark = pytest.mark.slow

KEYS_FOR = {"1": CLASSES[0], "2": CLASSES[1], "3": CLASSES[2], "0": "junk", "x": "junk"}


def test_label_20_crops_with_the_keyboard(tmp_path, serve):
    exe = chromium.find_chromium()
    if exe is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium)")
    pool = make_pool(tmp_path / "pool", frames=3, per_frame=10)
    out = tmp_path / "labelled"
    server = serve(build_session(pool, CLASSES, out))
    idle = "document.body.dataset.pending === '0'"
    current = "document.querySelector('.card.current').dataset.id"
    expected: dict[str, str] = {}
    made: list[str] = []
    with chromium.Chromium(exe) as page:
        page.call("Page.enable")
        page.call("Page.navigate", url=server.url)
        page.wait_for(f"document.querySelectorAll('.card').length === 24 && {idle}")
        # every card shows its crop; cards after frame 0 show the previous frame's crop too
        page.wait_for("[...document.images].every(i => i.complete && i.naturalWidth === 64)")
        assert page.evaluate("document.querySelectorAll('.card img.ctx').length") >= 24
        script = ["1", "2", " ", "3", "0", "z", "2", "ArrowRight", "x", "1", "s", "3"]
        presses = 0
        while len(expected) < 20:
            key = script[presses] if presses < len(script) else "123"[presses % 3]
            cid = page.evaluate(current)
            page.press(key)
            presses += 1
            page.wait_for(idle)
            if key in KEYS_FOR:
                expected[cid] = KEYS_FOR[key]
                made.append(cid)
            elif key == "z":
                undone = made.pop()
                del expected[undone]
                assert page.evaluate(current) == undone  # the crop taken back is shown first
        # 30 crops, 24 a page, 3 skipped: the second page came without a page load
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        progress = page.evaluate("document.getElementById('progress').textContent")
        assert "20 / 30 labelled" in progress
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["crop_id"], r["label"]) for r in rows] == [(c, expected[c]) for c in made]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.tif"))
    assert files == sorted(f"{lab}/{c}.tif" for c, lab in expected.items() if lab != "junk")
    assert presses == 20 + 3 + 2  # 20 labels, 3 skips, one undo and the label it took back
