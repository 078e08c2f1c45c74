"""``examples/classify_own_acquisition.py``: a script's own ``multi_d_acquisition_events``
(2 time points x 2 positions x 2 channels x 3 z-planes) on the simulated microscope, the nuclear
channel's middle plane classified in its own ``image_process_fn``: every image saved, the right
plane classified, every nucleus placed in its position's field."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from tests.run_images import run_images

from .test_run_sim import REPO

pytestmark = pytest.mark.slow

SIM_20X_UM_PER_PX = 0.3225
POSITIONS_UM = [(0.0, 0.0), (400.0, -300.0)]


def test_classify_own_acquisition_example(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "classify_own_acquisition.py"), "--out",
         str(out)], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "24 images saved, 4 classified (0 failed)" in proc.stdout
    images = run_images(out, pixels=True)
    assert len(images) == 24  # nothing lost: every channel and plane saved
    assert {(im.axes["channel"], im.axes["z"]) for im in images} == {
        (c, z) for c in ("FITC", "Brightfield") for z in range(3)}
    with (out / "nuclei.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    per_frame = {(t, p): [r for r in rows if (r["time"], r["position"]) == (str(t), str(p))]
                 for t in range(2) for p in range(2)}
    assert all(len(v) >= 5 for v in per_frame.values()), {k: len(v) for k, v in per_frame.items()}
    half_field_um = 512 / 2 * SIM_20X_UM_PER_PX
    for (_, p), found in per_frame.items():
        x0, y0 = POSITIONS_UM[p]
        for r in found:
            assert abs(float(r["x_um"]) - x0) <= half_field_um + 1
            assert abs(float(r["y_um"]) - y0) <= half_field_um + 1

    # the classified image is the in-focus FITC plane: classifying it again gives the same nuclei
    from smartscope.classify import Classifier, classify_frame

    clf = Classifier(REPO / "models" / "hela_h2b_5class", num_threads=1)
    plane = {(im.axes["channel"], im.axes["z"]): im.pixels for im in images
             if im.axes.get("time") == 0 and im.axes.get("position") == 0}
    again = classify_frame(plane["FITC", 1], SIM_20X_UM_PER_PX, clf)
    assert sorted(round(c.x, 1) for c in again.cells) == sorted(
        float(r["x_px"]) for r in per_frame[0, 0])
