"""The hook without a microscope: images and metadata fed by hand, events read off a queue."""

from __future__ import annotations

import csv
import json
import logging
import queue

import numpy as np
import pytest

from smartscope.acquire.hook import SmartHook
from smartscope.acquire.records import Recorder
from smartscope.classify import Cell
from smartscope.decide import Planner, PlanSettings
from smartscope.protocol import Position, Screening, Trigger

CLASSES = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")
IMG = np.zeros((256, 256), np.uint16)


def _cell(phase, y=100.0, x=150.0, conf=0.95):
    probs = {c: 0.01 for c in CLASSES}
    probs[phase] = conf
    return Cell(y=y, x=x, phase=phase, confidence=conf, area_um2=90.0, probabilities=probs)


def make_hook(tmp_path, classify, actions=None, on_error="continue", n_timepoints=3, **kw):
    screening = Screening(objective="10x", channel="FITC", exposure_ms=10, interval_s=1.0,
                          n_timepoints=n_timepoints)
    triggers = ()
    if actions:
        triggers = (Trigger.model_validate({"name": "m", "phase": "metaphase",
                                            "actions": actions}),)
    settings = PlanSettings(screening=screening,
                            positions=(Position(name="A1", x_um=10, y_um=20, z_um=0),),
                            triggers=triggers, objective_offsets_um={"60x": 2.0})
    clock = iter(np.arange(0, 1000, 0.004))
    return SmartHook(
        Planner(settings), classify=classify,
        preset_properties=lambda g, p: [("Turret", "Label", p)],
        pixel_sizes_um={"10x": 0.645, "60x": 0.1075}, on_error=on_error,
        recorder=Recorder.in_folder(tmp_path, CLASSES),
        clock=lambda: float(next(clock)), **kw,
    )


def drive(hook, max_images=100):
    """Play the microscope: take each queued event, 'acquire' it, hand the image to the hook."""
    q: queue.Queue = queue.Queue()
    q.put(hook.first_event())
    seen = []
    t = 0.0
    while len(seen) < max_images:
        ev = q.get_nowait()
        if ev is None:
            break
        t = max(t + 0.1, ev.get("min_start_time", 0.0))
        md = {"Axes": ev["axes"], "ElapsedTime-ms": t * 1000, "PixelSize_um": 0.645}
        seen.append(ev)
        out = hook(IMG, md, q)
        if "followup" in ev["axes"]:  # written by the hook into the follow-up's data set
            assert out is None
        else:  # passed on to be saved, its metadata completed
            assert out[0] is IMG and out[1].items() >= md.items()
            assert out[1]["PixelSizeAffine"].startswith("0.645;")
    hook.close()
    return seen


def mode(ev):
    return "follow" if "followup" in ev["axes"] else "screen"


def records(tmp_path):
    return [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]


def test_screening_ends_by_itself_and_writes_cells(tmp_path):
    hook = make_hook(tmp_path, lambda img, ps: [_cell("interphase"), _cell("anaphase", conf=0.6)])
    seen = drive(hook)
    assert [e["axes"]["time"] for e in seen] == [0, 1, 2]
    assert all(e["properties"] == [["Turret", "Label", "10x"]] for e in seen)
    assert hook.finished
    rows = list(csv.DictReader((tmp_path / "cells.csv").open()))
    assert len(rows) == 6
    assert {"frame", "time_s", "position", "y", "x", "phase", "confidence"} <= set(rows[0])
    assert rows[0]["position"] == "A1" and rows[0]["phase"] == "interphase"
    assert float(rows[0]["p_interphase"]) == pytest.approx(0.95)
    # stage coordinates: (150 - 127.5) px * 0.645 um/px right of x = 10 um
    assert float(rows[0]["x_um"]) == pytest.approx(10 + 22.5 * 0.645, abs=1e-3)
    assert records(tmp_path)[-1]["event"] == "screening_done"
    assert len(hook.latencies_ms) == 3


def test_trigger_queues_follow_up_with_objective_switch(tmp_path):
    calls = []

    def classify(img, ps):
        calls.append(ps)
        return [_cell("metaphase")] if len(calls) == 2 else [_cell("interphase")]

    hook = make_hook(tmp_path, classify, [{"type": "centre_on_cell", "objective": "60x"},
                                          {"type": "burst", "n_frames": 2}])
    seen = drive(hook)
    modes = [mode(e) for e in seen]
    assert modes == ["screen", "screen", "follow", "follow", "screen"]
    follow = seen[2]
    assert follow["properties"] == [["Turret", "Label", "60x"]] and follow["z"] == 2.0
    assert follow["x"] == pytest.approx(10 + 22.5 * 0.645)
    assert calls == [0.645, 0.645, 0.645]  # burst frames are not classified
    recs = records(tmp_path)
    trig = [r for r in recs if r["event"] == "trigger"][0]
    assert trig["frame"] == 1 and trig["cells"][0]["phase"] == "metaphase"
    assert trig["cells"][0]["x_um"] == pytest.approx(follow["x"], abs=1e-3)
    assert "latency_ms" in trig and trig["position"] == "A1"
    # the image each decision was made on: its data set and axes, as in frames.csv
    assert trig["image"]["axes"] == seen[1]["axes"]
    frames = (tmp_path / "frames.csv").read_text().splitlines()
    assert frames[0].split(",")[:3] == ["frame", "time_s", "mode"] and len(frames) == 1 + 5


def test_classifier_failure_continue_keeps_screening(tmp_path, caplog):
    n = {"i": 0}

    def classify(img, ps):
        n["i"] += 1
        if n["i"] == 2:
            raise RuntimeError("bad crop")
        return [_cell("interphase")]

    hook = make_hook(tmp_path, classify)
    with caplog.at_level(logging.ERROR):
        seen = drive(hook)
    assert len(seen) == 3 and hook.finished
    err = [r for r in records(tmp_path) if r["event"] == "error"]
    assert len(err) == 1 and "bad crop" in err[0]["error"] and err[0]["frame"] == 1
    assert "Traceback" in caplog.text and "bad crop" in caplog.text


def test_classifier_failure_stop_ends_cleanly(tmp_path):
    def classify(img, ps):
        raise RuntimeError("model exploded")

    hook = make_hook(tmp_path, classify, on_error="stop", n_timepoints=10)
    seen = drive(hook)
    assert len(seen) == 1 and hook.finished
    assert records(tmp_path)[0]["event"] == "error"


def test_planner_failure_abandons_follow_up(tmp_path, monkeypatch):
    hook = make_hook(tmp_path, lambda img, ps: [_cell("metaphase")],
                     [{"type": "change_interval", "interval_s": 0.1, "max_frames": 50}],
                     n_timepoints=2)
    original = hook.planner.on_frame
    state = {"n": 0}

    def flaky(frame):
        state["n"] += 1
        if state["n"] == 3:
            raise ValueError("planner bug")
        return original(frame)

    monkeypatch.setattr(hook.planner, "on_frame", flaky)
    seen = drive(hook)
    events = [r["event"] for r in records(tmp_path)]
    assert "error" in events and "abandoned" in events
    assert mode(seen[3]) == "screen"  # back to screening after the failure
    assert hook.finished


def test_foreign_images_pass_through(tmp_path, caplog):
    hook = make_hook(tmp_path, lambda img, ps: [])
    q: queue.Queue = queue.Queue()
    hook.first_event()
    md = {"Axes": {"time": 99}, "ElapsedTime-ms": 0}
    with caplog.at_level(logging.WARNING, logger="smartscope.acquire"):
        assert hook(IMG, md, q) == (IMG, md)
        # e.g. a script's own multi_d_acquisition_events: said once, not per image
        assert hook(IMG, {"Axes": {"position": 1, "z": 2, "channel": "DAPI"}}, q)[0] is IMG
        assert q.empty() and hook.progress().frames == 0
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and "axes {'time': 99} reached the hook but was not requested" \
            in said[0] and "hook.first_event()" in said[0] and "classify_frame" in said[0]
        hook.close(report=False)
    assert "2 image(s) reached the hook without being requested" in caplog.records[-1].getMessage()


def test_request_stop(tmp_path):
    hook = make_hook(tmp_path, lambda img, ps: [], n_timepoints=50)
    q: queue.Queue = queue.Queue()
    ev = hook.first_event()
    hook.request_stop()
    hook(IMG, {"Axes": ev["axes"], "ElapsedTime-ms": 0}, q)
    assert q.get_nowait() is None
    hook.close()
    assert records(tmp_path)[-1]["event"] == "interrupted"


def test_pixel_size_priority(tmp_path):
    hook = make_hook(tmp_path, lambda img, ps: [], fallback_pixel_size=lambda: 1.5)
    assert hook.pixel_size_for("10x", {"PixelSize_um": 9.0}) == 0.645
    assert hook.pixel_size_for("20x", {"PixelSize_um": 0.3}) == 0.3
    assert hook.pixel_size_for("20x", {}) == 1.5
    hook.close()
    hook = make_hook(tmp_path, lambda img, ps: [], pixel_size_um=0.2)
    assert hook.pixel_size_for("10x", {"PixelSize_um": 9.0}) == 0.2
    hook.close()


def test_failing_observer_does_not_stop_the_run(tmp_path, caplog):
    def bad(frame):
        raise RuntimeError("observer bug")

    hook = make_hook(tmp_path, lambda img, ps: [], observers=[bad],
                     progress=lambda p: (_ for _ in ()).throw(ValueError("display bug")))
    with caplog.at_level(logging.ERROR):
        seen = drive(hook)
    assert len(seen) == 3 and hook.finished
    assert "observer bug" in caplog.text


def test_latency_budget_is_checked_logged_and_recorded_per_image(tmp_path, caplog):
    """The test clock advances 4 ms per reading, so every image takes a few ms in the hook."""
    caplog.set_level(logging.WARNING, logger="smartscope.acquire.hook")
    hook = make_hook(tmp_path, lambda img, ps: [_cell("interphase")], latency_budget_ms=1.0)
    drive(hook)
    assert hook.progress().over_budget == 3
    over = [r for r in caplog.records if "latency budget of 1 ms" in r.getMessage()]
    assert len(over) == 3
    rows = list(csv.DictReader((tmp_path / "frames.csv").open()))
    assert [r["over_budget"] for r in rows] == ["1", "1", "1"]

    roomy = make_hook(tmp_path / "roomy", lambda img, ps: [], latency_budget_ms=60_000.0)
    drive(roomy)
    assert roomy.progress().over_budget == 0
    rows = list(csv.DictReader((tmp_path / "roomy" / "frames.csv").open()))
    assert [r["over_budget"] for r in rows] == ["0", "0", "0"]


@pytest.mark.parametrize(("pixel_size_um", "warned"), [(0.645, False), (6.45, True)])
def test_a_pixel_size_10x_off_is_warned_about_once(tmp_path, caplog, pixel_size_um, warned):
    from tests.vision.conftest import grid_centres, render_frame

    frame = render_frame((300, 400), grid_centres(4, 5, 35.0, 20.0), 0.645)  # 18 um at 0.645
    hook = make_hook(tmp_path, lambda img, ps: [_cell("interphase", y=50.0 + i) for i in range(3)],
                     pixel_size_um=pixel_size_um, nucleus_diameter_um=18.0)
    q: queue.Queue = queue.Queue()
    ev = hook.first_event()
    with caplog.at_level(logging.WARNING, logger="smartscope.acquire.hookimages"):
        for t in range(2):
            hook(frame, {"Axes": ev["axes"], "ElapsedTime-ms": 1000.0 * t}, q)
            ev = q.get_nowait()
        hook.close(report=False)  # the check runs beside the acquisition; close waits for it
    said = [r.getMessage() for r in caplog.records if "check the pixel size" in r.getMessage()]
    assert len(said) == (1 if warned else 0)
    if warned:
        assert said[0].startswith("10x screening image: the nuclei of this frame look ")
        assert "microscope.objectives.10x.pixel_size_um" in said[0]
    assert hook.progress().frames == 2


def test_an_acquisition_ended_from_outside_is_said_at_close(tmp_path, caplog):
    """A `with Acquisition(...)` block marks the acquisition finished after the first image: the
    hook's next events are dropped and the run stops after one frame; close() says why."""
    hook = make_hook(tmp_path, lambda img, ps: [])
    q: queue.Queue = queue.Queue()
    ev = hook.first_event()
    hook(IMG, {"Axes": ev["axes"], "ElapsedTime-ms": 0.0}, q)  # queues time point 1: never taken
    with caplog.at_level(logging.WARNING, logger="smartscope.acquire"):
        hook.close(report=False)
        hook.close(report=False)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith(
        "the acquisition ended with 1 image(s) the hook had queued not taken")
    assert "without `with`" in said[0]


def test_a_run_the_hook_ended_says_nothing_at_close(tmp_path, caplog):
    hook = make_hook(tmp_path, lambda img, ps: [])
    with caplog.at_level(logging.WARNING, logger="smartscope.acquire"):
        drive(hook)
    assert hook.finished and not caplog.records


def test_a_follow_up_classified_in_a_channel_without_nuclei_is_said(tmp_path, caplog):
    """set_channel Brightfield then change_interval: its frames are classified in Brightfield,
    show no nucleus, and the time-lapse ends on 'phase absent' after min_frames (on the
    simulator: 2 of up to 6 frames) without a word; now a warning says why, once."""
    calls = []

    def classify(img, ps):
        calls.append(ps)
        if len(calls) == 2:
            return [_cell("metaphase")]
        return [] if 3 <= len(calls) <= 4 else [_cell("interphase")]  # Brightfield: none

    hook = make_hook(tmp_path, classify, [
        {"type": "set_channel", "preset": "Brightfield", "exposure_ms": 5},
        {"type": "change_interval", "interval_s": 0.5, "min_frames": 2, "max_frames": 6}])
    with caplog.at_level(logging.WARNING, logger="smartscope.acquire"):
        seen = drive(hook)
    follow = [e for e in seen if mode(e) == "follow"]
    assert [e["axes"]["channel"] for e in follow] == ["Brightfield", "Brightfield"]
    said = [r.getMessage() for r in caplog.records if "shows no nucleus" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        "a classified change_interval frame in Brightfield (the channel set_channel chose)")
    assert "extra_channels" in said[0] and "main frame stays in FITC" in said[0]
    end = [r for r in records(tmp_path) if r["event"] == "interval_end"]
    assert end and end[0]["reason"] == "phase_absent"
