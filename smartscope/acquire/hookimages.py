"""The hook's work on each image: its pixel size, its cells found, classified and placed on
the stage, its metadata completed (pixel size, pixel -> stage affine, frame number) and, for a
follow-up, its writing into the follow-up's own data set (``smartscope.acquire.datasets``); and
before that, each requested image placed and turned into its event (``_register``).

``ImageHandling`` is a part of ``smartscope.acquire.hook.SmartHook``, kept apart so the hook's
module holds the acquisition logic (queueing, deciding, recording, recovering).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from smartscope.acquire.corecalls import PixelSizeReader
from smartscope.acquire.datasets import ImageLayout, Placement, affine_string, stage_affine
from smartscope.acquire.events import AcquisitionEvent, EventBuilder
from smartscope.acquire.records import Recorder
from smartscope.classify.cells import Cell, FrameClassifier
from smartscope.decide import (
    SCREEN,
    Decision,
    Frame,
    FrameRequest,
    Planner,
    Step,
    check_target,
    place_cells,
)
from smartscope.errors import StageLimitError

log = logging.getLogger(__name__)


_UNREQUESTED_HOW = (
    "the hook classifies only the images of the events it queues itself: start the "
    "acquisition with acq.acquire(hook.first_event()), not with your own events such as "
    "multi_d_acquisition_events; to classify images of your own, call "
    "smartscope.classify.classify_frame(image, pixel_size_um, classifier)")


class ImageHandling:
    """Per-image methods of ``SmartHook`` (pixel size, cells, metadata, follow-up writing)."""

    planner: Planner
    layout: ImageLayout
    recorder: Recorder
    on_error: Literal["continue", "stop"]
    _classify: FrameClassifier
    _pixel_sizes: dict[str, float]
    _pixel_size: float | None
    _fallback_pixel_size: PixelSizeReader | None
    _stop_requested: bool
    nucleus_diameter_um: float | None
    unrequested_images: int
    finished: bool
    _pending: dict[tuple[Any, ...], tuple[FrameRequest, Placement]]
    _scale_checked: set[str]
    _scale_checks: list[threading.Thread]
    _empty_channels: set[str]
    _events: EventBuilder
    _lock: threading.Lock

    if TYPE_CHECKING:
        def _error_record(self, e: BaseException, time_s: float, where: str) -> Decision: ...

    def _register(self, step: Step) -> list[AcquisitionEvent]:
        """The step's requested images as events, each placed in its data set and kept
        pending until it arrives; refused whole if one target lies outside the stage limits."""
        for r in step.requests:  # the last check before anything reaches the microscope
            why = check_target(self.planner.s.limits, r.x_um, r.y_um, r.z_um)
            if why is not None:
                raise StageLimitError(
                    f"refused to queue the {r.mode} frame at {r.position_name} ({r.objective}, "
                    f"{r.channel}): {why}; nothing was sent to the stage"
                )
        events = []
        for r in step.requests:
            ev = self._events.event(r)
            with self._lock:
                self._pending[r.key()] = (r, self.layout.place(r))
            events.append(ev)
        return events

    def _unrequested(self, metadata: Mapping[str, Any]) -> None:
        """Count an image the hook did not queue; warn at the first one."""
        self.unrequested_images += 1
        if self.unrequested_images == 1:
            log.warning("an image with axes %s reached the hook but was not requested by it: "
                        "it is saved as it came, not classified and not decided on (%s)",
                        dict(metadata.get("Axes") or {}), _UNREQUESTED_HOW)

    def _say_what_was_not_done(self) -> None:
        """At close, once: images queued but never taken, images not requested."""
        self._finish_scale_checks()
        if not self.finished and self._pending and not self._stop_requested:
            log.warning("the acquisition ended with %d image(s) the hook had queued not taken: "
                        "it was ended from outside the hook (leaving a `with Acquisition(...)` "
                        "block or acq.mark_finished() ends it after the images already queued; "
                        "call acq.acquire(hook.first_event()) then acq.await_completion(), "
                        "without `with`), or it was aborted", len(self._pending))
            self._pending.clear()
        if self.unrequested_images:
            log.warning("%d image(s) reached the hook without being requested by it: saved, "
                        "not classified (%s)", self.unrequested_images, _UNREQUESTED_HOW)
            self.unrequested_images = 0

    def _store(self, image: np.ndarray, metadata: dict[str, Any], req: FrameRequest,
               placement: Placement, index: int | None, pixel_size_um: float | None,
               records: list[Decision] | None = None) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The image with its metadata completed, for pycromanager to save (screening), or None
        once written into its follow-up data set. A follow-up image the data set refuses is
        handed to pycromanager instead (logged, recorded as an error), never lost."""
        try:
            md, ps, affine = self._completed(metadata, req, index, pixel_size_um)
        except Exception:  # the image is saved as the microscope described it
            log.exception("could not complete the metadata of image %s", index)
            md, ps, affine = dict(metadata), pixel_size_um, None
        if req.mode == SCREEN or not self.layout.writes_followups:
            return image, md
        md["Axes"] = dict(placement.axes)
        try:
            self.layout.write(req, placement, np.asarray(image), md, ps, affine)
        except Exception as e:
            where = (f"could not write a follow-up image into {placement.dataset}; pycromanager "
                     "saves it with the screening images instead")
            if records is not None:  # logged there, with the traceback
                records.append(self._error_record(
                    e, float(md.get("ElapsedTime-ms", 0.0)) / 1000.0, where="save"))
                log.error("%s", where)
            else:
                log.exception("%s", where)
            return image, {**md, "Axes": req.axes()}
        return None

    def _completed(self, metadata: dict[str, Any], req: FrameRequest, index: int | None,
                   pixel_size_um: float | None) -> tuple[dict[str, Any], float | None,
                                                         tuple[float, ...] | None]:
        """A copy of the image's metadata with the pixel size and affine the hook used and the
        frame number; returns it with that pixel size and affine (None when unknown)."""
        md = dict(metadata)
        ps = pixel_size_um
        if ps is None:
            try:
                ps = self.pixel_size_for(req.objective, metadata)
            except Exception:  # no pixel size anywhere: the image keeps what it has
                ps = None
        affine = None
        if ps is not None:
            s = self.planner.s
            o = s.orientation
            affine = stage_affine(ps, s.affines_um.get(req.objective), o.flip_x, o.flip_y,
                                  o.rotation_deg)
            md["PixelSize_um"] = float(ps)
            md["PixelSizeAffine"] = affine_string(affine)
        if index is not None:
            md["SmartscopeFrame"] = index
        return md, ps, affine

    def pixel_size_for(self, objective: str, metadata: Mapping[str, Any]) -> float:
        """Pixel size of an image, um/px: protocol override, per-objective override, the image's
        metadata, then the microscope's current calibration."""
        if self._pixel_size is not None:
            return self._pixel_size
        if objective in self._pixel_sizes:
            return self._pixel_sizes[objective]
        for key in ("PixelSize_um", "PixelSizeUm"):
            try:
                value = float(metadata.get(key) or 0.0)
            except (TypeError, ValueError):  # not a number: the next source decides
                continue
            if value > 0:
                return value
        if self._fallback_pixel_size is not None:
            value = self._fallback_pixel_size()
            if value and value > 0:  # MMCore reports 0 for an uncalibrated objective
                return float(value)
        raise ValueError(
            f"no pixel size for objective {objective!r}: calibrate it in Micro-Manager or set "
            f"microscope.objectives.{objective}.pixel_size_um"
        )

    def _check_scale(self, image: np.ndarray, pixel_size_um: float, objective: str) -> None:
        """Once per objective: warn when its nuclei do not look their expected size.

        The measurement takes 0.5-0.9 s on a 1-4 Mpx frame, so it runs beside the acquisition
        (on a copy of the image), not in the frame's decision; ``close`` waits for it."""
        if self.nucleus_diameter_um is None or objective in self._scale_checked:
            return
        self._scale_checked.add(objective)
        check = threading.Thread(
            target=_scale_warning, name=f"smartscope-scale-{objective}", daemon=True,
            args=(np.array(image, copy=True), pixel_size_um, self.nucleus_diameter_um, objective))
        check.start()
        self._scale_checks.append(check)

    def _finish_scale_checks(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) for the pixel-size checks still running, so their warnings are said."""
        for check in self._scale_checks:
            check.join(timeout_s)
        self._scale_checks.clear()

    def _no_nuclei_in_channel(self, req: FrameRequest) -> None:
        """Once per channel: a classified follow-up frame in another channel than the
        screening one showed no nucleus (e.g. Brightfield after set_channel: change_interval
        then ends on 'phase absent' after min_frames)."""
        screening = self.planner.s.screening.channel
        if req.channel == screening or req.channel in self._empty_channels:
            return
        self._empty_channels.add(req.channel)
        log.warning("a classified %s frame in %s (the channel set_channel chose) shows no "
                    "nucleus: follow-up frames are classified in the channel they are taken in, "
                    "so a change_interval there ends on 'phase absent' after min_frames; image "
                    "%s as extra_channels of change_interval (its main frame stays in %s) or set "
                    "while_phase_persists: false", req.action or "follow-up", req.channel,
                    req.channel, screening)

    def _observe(
        self, image: np.ndarray, metadata: Mapping[str, Any], req: FrameRequest, index: int,
        time_s: float,
    ) -> tuple[Frame, list[dict[str, Any]], list[Decision]]:
        ps = self.pixel_size_for(req.objective, metadata)
        img = np.asarray(image)
        shape = (int(img.shape[-2]), int(img.shape[-1]))
        cells: tuple[Cell, ...] | None = None
        rows: list[dict[str, Any]] = []
        errors: list[Decision] = []
        if req.classify:
            s = self.planner.s
            try:
                cells = place_cells(_checked_cells(self._classify(img, ps)), shape=shape,
                                    pixel_size_um=ps, stage_x_um=req.x_um, stage_y_um=req.y_um,
                                    orientation=s.orientation,
                                    affine=s.affines_um.get(req.objective))
            except Exception as e:
                errors.append(self._error_record(e, time_s, where="classify"))
                if self.on_error == "stop":
                    self._stop_requested = True
            else:
                rows = [self.recorder.cell_row(c, index, time_s, req, ps) for c in cells]
                if req.mode == SCREEN and len(cells) >= 3:
                    self._check_scale(img, ps, req.objective)
                elif req.mode != SCREEN and not cells:
                    self._no_nuclei_in_channel(req)
        frame = Frame(request=req, index=index, time_s=time_s, shape=shape, pixel_size_um=ps,
                      cells=cells)
        return frame, rows, errors


def _scale_warning(image: np.ndarray, pixel_size_um: float, diameter_um: float,
                   objective: str) -> None:
    from smartscope.vision.scale import scale_mismatch

    try:
        doubt = scale_mismatch(image, pixel_size_um, diameter_um)
    except Exception:  # a check, never a reason to lose the frame
        log.exception("could not check the nucleus size of a %s image", objective)
        return
    if doubt is not None:
        log.warning("%s screening image: %s (microscope.objectives.%s.pixel_size_um, "
                    "detection.diameter_um)", objective, doubt, objective)


def _checked_cells(found: Sequence[Cell]) -> Sequence[Cell]:
    """The frame classifier's result, refused unless it is a sequence of ``Cell``."""
    for c in found:
        if not isinstance(c, Cell):
            raise TypeError(f"the frame classifier returned a {type(c).__name__}: it must return "
                            "smartscope.classify.Cell objects")
    return found
