"""A run folder written the way a run writes it (the run's own sinks, an NDTiff data set written
with ndstorage), with frames of bright discs where the records say nuclei are: the report's input
without a microscope."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smartscope.acquire.sinks import CellsCsv, DecisionsJsonl, FramesCsv, write_json_atomic

CLASSES = ("interphase", "prometaphase", "metaphase", "anaphase")
SCREEN_PX, SCREEN_PS = 256, 0.645
FOLLOW_PX, FOLLOW_PS = 256, 0.1075


def _disc_frame(shape: int, centres: list[tuple[float, float]], radius_px: float,
                rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:shape, :shape]
    img = rng.normal(100, 3, (shape, shape))
    for y, x in centres:
        img += 800 * (((yy - y) ** 2 + (xx - x) ** 2) <= radius_px ** 2)
    return np.clip(img, 0, 65535).astype(np.uint16)


def write_run(
    folder: Path,
    *,
    n_screen: int = 6,
    trigger_at: tuple[int, ...] = (2,),
    new_layout: bool = True,
    run_json: bool = True,
    status: str = "completed",
    extra_run: dict[str, Any] | None = None,
    zstack: int = 0,
) -> dict[str, Any]:
    """Write a run folder; returns what it holds (frames, trigger frames)."""
    from ndstorage import NDTiffDataset

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    ds = NDTiffDataset(str(folder), name="images", writable=True)
    ds.initialize({"PixelSize_um": SCREEN_PS})
    cells = CellsCsv(folder / "cells.csv", CLASSES)
    decisions = DecisionsJsonl(folder / "decisions.jsonl")
    frames = FramesCsv(folder / "frames.csv") if new_layout else None
    cell_px = [(40.0, 50.0), (120.0, 200.0), (200.0, 90.0)]
    frame = 0
    t = 0.0
    followup = 0
    follow_time = 0
    triggers = []
    for tp in range(n_screen):
        t += 2.0
        axes = {"mode": "screen", "time": tp, "position": 0, "z": 0, "channel": "FITC"}
        ds.put_image(axes, _disc_frame(SCREEN_PX, cell_px, 12, rng),
                     {"ElapsedTime-ms": t * 1000, "PixelSize_um": SCREEN_PS})
        fires = tp in trigger_at
        phases = ["interphase", "metaphase" if fires else "prometaphase", "interphase"]
        cells.write([{"frame": frame, "time_s": t, "position": "A1", "mode": "screen",
                      "objective": "10x", "channel": "FITC", "pixel_size_um": SCREEN_PS,
                      "y": y, "x": x, "phase": ph, "confidence": 0.9,
                      "probabilities": {ph: 0.9}}
                     for (y, x), ph in zip(cell_px, phases, strict=True)])
        if frames is not None:
            frames.write({"frame": frame, "time_s": t, "mode": "screen", "position": "A1",
                          "objective": "10x", "channel": "FITC", "pixel_size_um": SCREEN_PS,
                          "n_cells": 3, "latency_ms": 100 + tp, "dataset": "images_1",
                          "axes": axes})
        d: dict[str, Any] = {"frame": frame, "time_s": t, "position": "A1", "mode": "screen"}
        frame += 1
        if not fires:
            continue
        followup += 1
        triggers.append(frame - 1)
        decisions.write({**d, "event": "trigger", "trigger": "metaphase_zoom",
                         "followup": followup,
                         "cells": [{"y_px": 120.0, "x_px": 200.0, "x_um": 46.1, "y_um": -5.2,
                                    "phase": "metaphase", "confidence": 0.93, "track": 7}],
                         "actions": [{"type": "centre_on_cell", "objective": "60x"},
                                     {"type": "return_to_screening"}],
                         "target": {"objective": "60x", "x_um": 46.1, "y_um": -5.2,
                                    "cell": {"y_px": 120.0, "x_px": 200.0}},
                         "refused": None, "latency_ms": 150.0})
        for _ in range(2):
            t += 0.5
            follow_time += 1
            faxes = {"mode": "follow", "time": follow_time, "position": 0, "z": 0,
                     "channel": "FITC"}
            c = (FOLLOW_PX - 1) / 2
            ds.put_image(faxes, _disc_frame(FOLLOW_PX, [(c + 2, c - 1)], 70, rng),
                         {"ElapsedTime-ms": t * 1000, "PixelSize_um": FOLLOW_PS})
            cells.write([{"frame": frame, "time_s": t, "position": "A1", "mode": "follow",
                          "followup": followup, "objective": "60x", "channel": "FITC",
                          "pixel_size_um": FOLLOW_PS, "y": c + 2, "x": c - 1,
                          "phase": "metaphase", "confidence": 0.88}])
            if frames is not None:
                frames.write({"frame": frame, "time_s": t, "mode": "follow", "position": "A1",
                              "followup": followup, "objective": "60x", "channel": "FITC",
                              "pixel_size_um": FOLLOW_PS, "n_cells": 1, "latency_ms": 20.0,
                              "dataset": "images_1", "axes": faxes})
            frame += 1
        if zstack:
            follow_time += 1
            for z in range(zstack):
                t += 0.1
                zaxes = {"mode": "follow", "time": follow_time, "position": 0, "z": z,
                         "channel": "FITC"}
                ds.put_image(zaxes, _disc_frame(FOLLOW_PX, [], 1, rng),
                             {"ElapsedTime-ms": t * 1000, "PixelSize_um": FOLLOW_PS,
                              "ZPosition_um_Intended": 3.0 - 1.5 + 0.75 * z})
                if frames is not None:
                    frames.write({"frame": frame, "time_s": t, "mode": "follow",
                                  "position": "A1", "followup": followup, "objective": "60x",
                                  "channel": "FITC", "pixel_size_um": FOLLOW_PS,
                                  "latency_ms": 1.0, "dataset": "images_1", "axes": zaxes})
                frame += 1
        decisions.write({"frame": frame - 1, "time_s": t, "position": "A1", "mode": "follow",
                         "event": "return", "trigger": "metaphase_zoom", "followup": followup,
                         "latency_ms": 1.0})
    decisions.write({"frame": frame - 1, "time_s": t, "event": "screening_done",
                     "time_points": n_screen})
    for sink in (cells, decisions, frames):
        if sink is not None:
            sink.close()
    ds.finish()
    ds.close()
    if run_json:
        write_json_atomic(folder / "run.json", {
            "protocol_file": "mitosis.yaml", "simulated": True, "microscope": "simulated",
            "started": "2026-01-01T00:00:00",
            "protocol": {"microscope": {"type": "simulated"},
                         "screening": {"objective": "10x", "channel": "FITC", "exposure_ms": 20,
                                       "interval_s": 2.0, "n_timepoints": n_screen},
                         "detection": {"diameter_um": 18},
                         "triggers": [{"name": "metaphase_zoom", "phase": ["metaphase"],
                                       "min_confidence": 0.85, "consecutive_frames": 1,
                                       "actions": [{"type": "centre_on_cell",
                                                    "objective": "60x"}]}],
                         "on_error": "continue"},
            "model": {"name": "test_model", "classes": list(CLASSES), "model_sha256": "ab" * 32},
            "summary": {"status": status, "frames": frame, "screening_frames": n_screen,
                        "followup_frames": frame - n_screen, "triggers_fired": len(triggers),
                        "errors": 0, "duration_s": t, "latency_ms": {"median": 100.0}},
            **(extra_run or {}),
        })
    return {"frames": frame, "triggers": triggers}


@pytest.fixture
def make_run() -> Callable[..., dict[str, Any]]:
    pytest.importorskip("ndstorage", reason="writing an NDTiff data set needs smartscope[mm]")
    return write_run


def decisions_of(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "decisions.jsonl").read_text().splitlines() if x]
