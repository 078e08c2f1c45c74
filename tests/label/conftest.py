"""A small synthetic crop pool (3 frames x 10 nuclei that drift 2 px a frame) as `smartscope crops`
writes it, and a running label server on it."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from smartscope.label.server import LabelServer
from smartscope.label.session import build_session

CLASSES = ["interphase", "metaphase", "anaphase"]


def make_pool(folder: Path, frames: int = 3, per_frame: int = 10, probs: bool = False) -> Path:
    """Write ``folder/crops/*.tif`` + ``folder/index.csv``; nucleus k is brighter and smaller
    with k, so the order without a model is known."""
    rng = np.random.default_rng(0)
    (folder / "crops").mkdir(parents=True)
    columns = ["crop_id", "file", "source", "frame", "y", "x", "area_um2", "mean_intensity",
               "touches_edge", "pixel_size_um"]
    if probs:
        columns += ["phase", "confidence", *(f"p_{c}" for c in CLASSES)]
    rows = []
    yy, xx = np.mgrid[:64, :64]
    for t in range(frames):
        for k in range(per_frame):
            cid = f"s0t{t:03d}n{k:03d}"
            blob = (200 + 50 * k) * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 80.0)
            crop = (100 + blob + rng.normal(0, 5, (64, 64))).astype(np.uint16)
            tifffile.imwrite(folder / "crops" / f"{cid}.tif", crop)
            row = {"crop_id": cid, "file": f"crops/{cid}.tif", "source": "movie.tif",
                   "frame": t, "y": 50.0 + 60 * k, "x": 100.0 + 2 * t, "area_um2": 300 - 10 * k,
                   "mean_intensity": 200 + 50 * k, "touches_edge": 0, "pixel_size_um": 0.645}
            if probs:
                p = np.full(3, 0.1)
                p[k % 3] = 0.8 - 0.05 * k  # uncertainty grows with k
                p = p / p.sum()
                row |= {"phase": CLASSES[k % 3], "confidence": f"{p.max():.4f}",
                        **{f"p_{c}": f"{v:.4f}" for c, v in zip(CLASSES, p, strict=True)}}
            rows.append(row)
    with open(folder / "index.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return folder


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    return make_pool(tmp_path / "pool")


@pytest.fixture
def serve():
    """serve(session) -> running LabelServer; stopped at the end of the test."""
    servers: list[LabelServer] = []

    def start(session) -> LabelServer:
        server = LabelServer(session)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def session(pool: Path, tmp_path: Path):
    return build_session(pool, CLASSES, tmp_path / "labelled")
