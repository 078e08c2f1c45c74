"""The report in a real browser (headless Chromium): it loads without errors, every image
decodes and every trigger is on the page. The simulated-run version is in
tests/acquire/test_run_sim.py."""

from __future__ import annotations

import re

from smartscope.report import write_report
from tests.report.chromium import render, require_chromium


def test_report_renders_in_chromium(tmp_path, make_run):
    browser = require_chromium()
    run = make_run(tmp_path / "run", trigger_at=(1, 3))
    page = write_report(tmp_path / "run")
    shown = render(page, browser, tmp_path / "profile")
    assert shown.errors == 0
    assert shown.images == shown.images_loaded == 2 * len(run["triggers"]) + 2
    frames = [int(f) for f in re.findall(r'class="trigger" id="trigger-\d+" data-frame="(\d+)"',
                                         shown.dom)]
    assert frames == run["triggers"]
