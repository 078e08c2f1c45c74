"""Render a page in headless Chromium (the system package) and read back what it shows."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no headless Chromium: install the system package (apt-get install chromium)")
    return path


# --no-sandbox: CI and containers run as root, where Chromium's sandbox refuses to start
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
          "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
          "--virtual-time-budget=10000")


@dataclass
class Rendered:
    dom: str
    images_loaded: int
    images: int
    errors: int


def render(page: Path, browser: str, profile: Path, timeout_s: float = 120) -> Rendered:
    """The DOM of ``page`` after Chromium loaded it, with the report's own load check (how many
    images decoded, how many script errors)."""
    proc = subprocess.run(
        [browser, *_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=timeout_s,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    errors = re.search(r'data-errors="(\d+)"', dom)
    assert loaded and errors, "the page's load check did not run:\n" + dom[:2000]
    return Rendered(dom, int(loaded.group(1)), int(loaded.group(2)), int(errors.group(1)))


def screenshot(page: Path, browser: str, profile: Path, out: Path, width: int = 1100,
               height: int = 2400, timeout_s: float = 120) -> None:
    """A PNG screenshot of ``page``."""
    proc = subprocess.run(
        [browser, *_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
         f"--screenshot={out}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=timeout_s,
    )
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]
