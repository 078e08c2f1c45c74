"""End to end: plain Pycro-Manager scripts run on the simulated microscope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartscope import phases
from smartscope.sim import ManualClock, demo_config, start


def _sharpness(img: np.ndarray) -> float:
    """99.9th percentile of the gradient magnitude of a lightly smoothed image."""
    from scipy import ndimage

    sm = ndimage.gaussian_filter(img.astype(float), 2)
    gy, gx = np.gradient(sm)
    return float(np.percentile(np.hypot(gx, gy), 99.9))


def test_demo_cells_reach_metaphase_in_view_within_20_frames() -> None:
    """The documented demo: seed 0, stage (0, 0), 10x, a frame every 2 s at time_scale 60."""
    cfg = demo_config(real_exposure_time=False)
    clock = ManualClock()
    with start(cfg, clock=clock) as scope:
        before = {c.id: c.phase for c in scope.truth(in_view=True)}
        entered: dict[int, int] = {}  # cell id -> first frame in metaphase
        for frame in range(20):
            for c in scope.truth(in_view=True):
                if (c.phase == phases.METAPHASE and before.get(c.id) != phases.METAPHASE
                        and c.id not in entered):
                    entered[c.id] = frame
            clock.advance(2.0 * cfg.time_scale)
    assert entered and min(entered.values()) < 20
    assert len([f for f in entered.values() if f <= 8]) >= cfg.demo.n_cells  # the demo cells


@pytest.mark.slow
def test_plain_pycromanager_script_with_event_adding_hook(tmp_path: Path) -> None:
    from pycromanager import Acquisition, multi_d_acquisition_events

    cfg = demo_config(time_scale=600.0, exposure_ms=10.0)  # 0.2 s interval = 2 sim minutes
    with start(cfg) as scope:
        seen: list[dict] = []
        state = {"added": False}
        focus60 = cfg.focal_plane_um("60x")
        # follow-up: a 3-slice z-stack at 60x (-2, 0, +2 um around focus), FITC
        follow_up = [{"axes": {"time": 999, "channel": "FITC-60x", "z": k},
                      "config_group": ["Channel", "FITC"], "z": focus60 + dz,
                      "properties": [["Objective", "Label", "60x"]], "exposure": 20}
                     for k, dz in enumerate((-2.0, 0.0, 2.0))]

        def image_process_fn(image, metadata, event_queue):
            # hooks run behind the camera: take what the frame saw from the frame's record
            axes = dict(metadata["Axes"])
            frame = scope.frames[len(seen)]
            cells = scope.truth(in_view=True, frame=frame)
            seen.append({"axes": axes, "shape": image.shape, "objective": frame.view.objective,
                         "pixel_size": metadata["PixelSize_um"], "mean": float(image.mean()),
                         "metaphase": any(c.phase == phases.METAPHASE for c in cells)})
            if not state["added"] and seen[-1]["metaphase"]:
                state["added"] = True
                for event in follow_up:
                    event_queue.put(event)
            if axes.get("time") == 999 and axes.get("z") == 2:
                event_queue.put(None)  # the follow-up was the last image: end the run
            return image, metadata

        events = multi_d_acquisition_events(num_time_points=20, time_interval_s=0.2,
                                            channel_group="Channel", channels=["FITC"])
        for e in events:  # screen at 10x, whatever the hook switched to in between
            e["properties"] = [["Objective", "Label", "10x"]]
        acq = Acquisition(directory=str(tmp_path), name="demo", image_process_fn=image_process_fn,
                          show_display=False)
        acq.acquire(events)
        acq.await_completion()
        dataset = acq.get_dataset()
        try:
            screen = dataset.read_image(time=3, channel="FITC")
            stack = [dataset.read_image(time=999, channel="FITC-60x", z=k) for k in range(3)]
            axes = dataset.axes
        finally:
            dataset.close()

    screening = [s for s in seen if s["axes"].get("time") != 999]
    assert len(screening) == 20
    assert all(s["objective"] == "10x" and s["shape"] == (1024, 1024) for s in screening)
    first = next(i for i, s in enumerate(screening) if s["metaphase"])
    assert first < 20
    follow = [s for s in seen if s["axes"].get("time") == 999]
    assert [s["axes"]["z"] for s in follow] == [0, 1, 2]
    assert all(s["objective"] == "60x" and s["pixel_size"] == pytest.approx(0.1075)
               for s in follow)
    # images saved by pycromanager, readable from the NDTiff data set on disk
    assert screen.shape == (1024, 1024) and screen.dtype == np.uint16
    assert all(img.shape == (1024, 1024) for img in stack)
    sharp = [_sharpness(img) for img in stack]
    assert sharp[1] > 1.5 * max(sharp[0], sharp[2])  # the middle slice is in focus
    assert 999 in axes["time"]
    saved = list(tmp_path.glob("demo*/*.tif"))
    assert saved and (saved[0].parent / "NDTiff.index").is_file()
