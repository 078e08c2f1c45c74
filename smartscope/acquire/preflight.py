"""``smartscope check``: a preflight of a protocol on the connected microscope.

Reads the microscope (groups, presets, calibrations, devices), takes one test snap and times it
with detection + classification, and says what would stop or spoil a run. Moves nothing but the
camera's shutter (through the snap).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartscope.acquire import corecalls
from smartscope.acquire.calibration import calibrations
from smartscope.acquire.prepare import (
    check_presets,
    check_trigger_field,
    frame_classifier,
    objectives_used,
)
from smartscope.errors import SmartscopeError
from smartscope.protocol import ChangeInterval, Protocol

log = logging.getLogger(__name__)

OK, WARN, BLOCKER = "ok", "warning", "BLOCKER"


@dataclass(frozen=True)
class CheckRow:
    """One line of the preflight table."""

    item: str
    status: str
    detail: str


def preflight(protocol: Protocol, core: Any, classifier: Any = None,
              source: str = "<protocol>") -> list[CheckRow]:
    """Check ``protocol`` against the microscope behind ``core``; one row per item.

    ``classifier`` (a loaded ``Classifier``), when given, is timed on the test snap.
    """
    rows: list[CheckRow] = []
    m = protocol.microscope

    def add(item: str, status: str, detail: str) -> None:
        rows.append(CheckRow(item, status, detail))

    try:
        check_presets(protocol, core, source)
        add("groups and presets", OK, f"{m.objective_group}, {m.channel_group} and every preset "
            "the protocol uses exist")
    except SmartscopeError as e:
        add("groups and presets", BLOCKER, str(e))
    own = protocol.pixel_sizes_um()
    try:
        cals = calibrations(core, m.objective_group, objectives_used(protocol))
    except Exception as e:  # noqa: BLE001 - a preset that does not exist is reported above
        cals = {}
        add("pixel sizes", BLOCKER, f"could not read the calibration: {e}")
    for obj, cal in cals.items():
        ps = own.get(obj, cal.pixel_size_um)
        if ps is None:
            add(f"pixel size {obj}", BLOCKER, f"no pixel-size calibration matches {obj}: "
                f"calibrate it in Micro-Manager or set microscope.objectives.{obj}.pixel_size_um")
            continue
        where = "protocol" if obj in own else f"Micro-Manager ({cal.config})"
        geo = ("Micro-Manager's affine " + str([round(v, 5) for v in cal.affine])
               if cal.affine is not None else f"protocol orientation {m.camera.model_dump()}")
        add(f"pixel size {obj}", OK, f"{ps:g} um/px from {where}; pixel -> stage: {geo}")
    if protocol.triggers:
        screen = protocol.screening.objective
        try:
            check_trigger_field(protocol, core, own.get(screen) or getattr(
                cals.get(screen), "pixel_size_um", None), source)
            add("trigger filters", OK, "every trigger's edge margin and area leave room in "
                "the screening field")
        except SmartscopeError as e:
            add("trigger filters", BLOCKER, str(e))
    devices: dict[str, str] = {}
    for item, name, prop in (("focus device", "getFocusDevice", "Focus"),
                             ("XY stage", "getXYStageDevice", "XYStage"),
                             ("camera", "getCameraDevice", "Camera")):
        label = devices[prop] = str(corecalls.call(core, name))
        add(item, OK if label else BLOCKER, label or f"none set (Core-{prop}); set it in "
            "Micro-Manager's configuration")
    n_cam = int(corecalls.call(core, "getNumberOfCameraChannels"))
    add("one camera", OK if n_cam == 1 else BLOCKER,
        "one image per frame" if n_cam == 1 else f"{n_cam} images per frame (Multi Camera): "
        "set Core-Camera to a single camera")
    auto = bool(corecalls.call(core, "getAutoShutter"))
    add("AutoShutter", OK if auto else WARN, "on" if auto else "off: the shutter is not opened "
        "for each image; turn AutoShutter on or open the shutter yourself")
    live = bool(corecalls.call(core, "isSequenceRunning"))
    add("Live mode off", BLOCKER if live else OK, "a sequence (Live mode or another "
        "acquisition) is running: stop it" if live else "no sequence running")
    if devices["XYStage"] and devices["Focus"]:  # else said above; nothing to read
        x = float(corecalls.call(core, "getXPosition"))
        y = float(corecalls.call(core, "getYPosition"))
        z = float(corecalls.call(core, "getPosition"))
        lim = m.stage_limits
        outside = [f"{a}={v:g}" for a, v, r in (("x", x, lim.x_um), ("y", y, lim.y_um),
                                                ("z", z, lim.z_um))
                   if r is not None and not r[0] <= v <= r[1]]
        add("stage inside limits", BLOCKER if outside else OK,
            f"{', '.join(outside)} outside microscope.stage_limits" if outside
            else f"x {x:g}, y {y:g}, z {z:g} um")
    if not devices["Camera"]:
        return rows  # no test snap without a camera
    rows += _snap_and_time(protocol, core, classifier, own, cals)
    return rows


def _snap_and_time(protocol: Protocol, core: Any, classifier: Any, own: dict[str, float],
                   cals: dict[str, Any]) -> list[CheckRow]:
    rows: list[CheckRow] = []
    sc = protocol.screening
    bits = int(corecalls.call(core, "getImageBitDepth"))
    rows.append(CheckRow("bit depth", OK if bits >= 12 else WARN, f"{bits} bit" + (
        "" if bits >= 12 else ": the model was trained on 16-bit frames; use 12 bit or more")))
    try:
        corecalls.call(core, "setExposure", float(sc.exposure_ms))
        t0 = time.perf_counter()
        corecalls.call(core, "snapImage")
        image = np.asarray(corecalls.call(core, "getImage"))
        snap_s = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 - any device error is the finding
        rows.append(CheckRow("test snap", BLOCKER, f"snapImage failed: {e}"))
        return rows
    top = (1 << bits) - 1
    saturated = float(np.mean(image >= top)) if image.size else 0.0
    status = WARN if saturated > 0.001 or image.max() == image.min() else OK
    rows.append(CheckRow("test snap", status,
                         f"{image.shape[-1]} x {image.shape[-2]} {image.dtype}, {snap_s * 1000:.0f}"
                         f" ms at {sc.exposure_ms:g} ms exposure, min {image.min()}, max "
                         f"{image.max()}, {saturated:.2%} saturated"))
    hook_s = 0.0
    ps = own.get(sc.objective) or getattr(cals.get(sc.objective), "pixel_size_um", None)
    if classifier is not None and ps:
        classify = frame_classifier(classifier, protocol.detection.diameter_um)
        classify(image, ps)  # the first call sets the interpreter up: time the second
        t0 = time.perf_counter()
        result: Any = classify(image, ps)
        hook_s = time.perf_counter() - t0
        cells = result.cells if hasattr(result, "cells") else result
        rows.append(CheckRow("detection + classification", OK,
                             f"{len(cells)} nuclei in {hook_s * 1000:.0f} ms"))
        if len(cells) >= 3:  # a frame without nuclei tells nothing about their size
            from smartscope.vision.scale import scale_mismatch

            doubt = scale_mismatch(image, ps, protocol.detection.diameter_um)
            rows.append(CheckRow("nucleus size", OK if doubt is None else WARN, doubt or (
                f"the test snap's nuclei fit {protocol.detection.diameter_um:g} um at "
                f"{ps:g} um/px")))
    positions = sc.position_list()
    n = len(positions) if positions else 1
    need = n * (snap_s + hook_s)
    fits = need <= sc.interval_s
    rows.append(CheckRow("screening interval", OK if fits else WARN,
                         f"{n} position(s) x ({snap_s * 1000:.0f} ms snap + {hook_s * 1000:.0f} ms"
                         f" hook) = {need:.2f} s, interval {sc.interval_s:g} s (stage moves "
                         "come on top)" + ("" if fits else ": frames will start late")))
    for t in protocol.triggers:
        for a in t.actions:
            if isinstance(a, ChangeInterval) and a.interval_s < snap_s + hook_s:
                rows.append(CheckRow(f"{t.name} interval", WARN,
                                     f"change_interval {a.interval_s:g} s is shorter than one "
                                     f"frame's work ({snap_s + hook_s:.2f} s)"))
    return rows


def format_table(rows: list[CheckRow]) -> str:
    """The rows as a plain-text table."""
    w1 = max(len(r.item) for r in rows)
    w2 = max(len(r.status) for r in rows)
    return "\n".join(f"{r.item:<{w1}}  {r.status:<{w2}}  {r.detail}" for r in rows)
