"""The closed-loop hook: pycromanager's ``image_process_fn(image, metadata, event_queue)``.

For every image it finds and classifies the nuclei, lets the ``Planner`` decide, writes
``cells.csv`` / ``decisions.jsonl`` and puts the next event(s) on the queue, or ``None`` to end
the acquisition. Screening is fed one time point at a time, so a decision is applied before the
next screening frame.

Use it from your own pycromanager script::

    hook = SmartHook.from_protocol(load_protocol("protocol.yaml"), core, out_dir="run1")
    acq = Acquisition(directory="run1", name="screening", image_process_fn=hook)
    hook.set_screening_dataset(acq.get_dataset().path)
    acq.acquire(hook.first_event())
    acq.await_completion()
    hook.close()

Screening images are saved by pycromanager; with an ``out_dir`` the hook writes each follow-up
into NDTiff data sets of its own under ``out_dir/followup_<n>/`` (see
``smartscope.acquire.datasets``). Every image's metadata gets the pixel size and pixel -> stage
affine the hook used (``PixelSize_um``, ``PixelSizeAffine``) and its frame number
(``SmartscopeFrame``, the ``frame`` of ``frames.csv`` and ``cells.csv``).

A failure inside the hook (classifier error, bad frame, a bug) is caught here, logged with its
traceback, recorded in ``decisions.jsonl``, and handled by ``on_error``: ``continue`` keeps
screening (a running follow-up is abandoned), ``stop`` ends the acquisition cleanly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from smartscope.acquire import corecalls
from smartscope.acquire.calibration import ObjectiveCalibration
from smartscope.acquire.corecalls import PixelSizeReader, PresetProperties
from smartscope.acquire.datasets import ImageLayout, Placement
from smartscope.acquire.events import AcquisitionEvent, EventBuilder
from smartscope.acquire.hookfaults import FaultHandling
from smartscope.acquire.hookimages import ImageHandling
from smartscope.acquire.prepare import frame_classifier as frame_classifier  # re-exported
from smartscope.acquire.prepare import prepare_hook, protocol_from_objects
from smartscope.acquire.records import Progress as Progress  # re-exported
from smartscope.acquire.records import Recorder
from smartscope.acquire.records import write_report_quietly as write_report_quietly  # re-exported
from smartscope.classify.cells import FrameClassifier
from smartscope.decide import (
    NO_LIMITS,
    SCREEN,
    Decision,
    Frame,
    FrameRequest,
    Limits,
    Planner,
    Step,
    axes_key,
)
from smartscope.protocol import (
    Detection,
    ObjectiveSpec,
    Protocol,
    Screening,
    Trigger,
)

log = logging.getLogger(__name__)

DEFAULT_DETECTION = Detection()


class SmartHook(ImageHandling, FaultHandling):
    """``image_process_fn`` that classifies every image and rewrites the acquisition.

    Build it with ``from_protocol`` or ``from_objects``; pass the instance itself as pycromanager's
    ``image_process_fn`` and start the acquisition with ``first_event()``.

    Parameters
    ----------
    planner : Planner
        The decision logic (screening order, triggers, follow-ups).
    classify : FrameClassifier
        Finds and classifies the nuclei of one image (returns ``Cell`` objects in pixels; the
        hook gives each its stage position once).
    preset_properties : PresetProperties
        (group, preset) -> device properties, used to send the objective preset in events
        (read once per preset, see ``smartscope.acquire.events.EventBuilder``).
    objective_group : str
        Config group of the objective turret.
    pixel_sizes_um : mapping
        Pixel size per objective preset overriding the microscope's calibration, um/px.
    pixel_size_um : float, optional
        Overrides every other pixel-size source.
    fallback_pixel_size : PixelSizeReader, optional
        The microscope's current calibration, um/px, used when nothing else gives one.
    on_error : "continue" or "stop"
    recorder : Recorder, optional
        Where cell rows and decision records go (default: kept in memory only).
    clock : callable
        Monotonic seconds, for latency and elapsed time.
    progress : callable, optional
        Called with a ``Progress`` after every frame.
    observers : sequence of callables, optional
        Called with each ``Frame`` after it was decided (e.g. to compare with ground truth),
        its cells as the planner saw them (stage position, border distance, track).
    latency_budget_ms : float, optional
        The hook's time per image, ms (protocol ``latency_budget_ms``); an image over it is
        logged as a warning, marked in ``frames.csv`` and counted (``Progress.over_budget``).
        None: no budget.
    layout : ImageLayout, optional
        Where images are stored (default: follow-ups in data sets of their own in the
        recorder's folder, when it has one; see ``smartscope.acquire.datasets``).
    nucleus_diameter_um : float, optional
        The detection's nucleus diameter: the first screening image of each objective with
        nuclei is checked against it for a wrong pixel size (a warning; see
        ``smartscope.vision.scale``). None: no check.
    """

    def __init__(
        self,
        planner: Planner,
        *,
        classify: FrameClassifier,
        preset_properties: PresetProperties,
        objective_group: str = "Objective",
        pixel_sizes_um: Mapping[str, float] | None = None,
        pixel_size_um: float | None = None,
        fallback_pixel_size: PixelSizeReader | None = None,
        on_error: Literal["continue", "stop"] = "continue",
        recorder: Recorder | None = None,
        clock: Callable[[], float] = time.perf_counter,
        progress: Callable[[Progress], None] | None = None,
        observers: Sequence[Callable[[Frame], None]] = (),
        latency_budget_ms: float | None = None,
        layout: ImageLayout | None = None,
        nucleus_diameter_um: float | None = None,
    ) -> None:
        self.planner = planner
        self.nucleus_diameter_um = nucleus_diameter_um
        self._scale_checked: set[str] = set()
        self._scale_checks: list[threading.Thread] = []
        self._empty_channels: set[str] = set()
        self.latency_budget_ms = latency_budget_ms
        self._over_budget = 0
        self._classify = classify
        self._events = EventBuilder(objective_group, preset_properties)
        self._pixel_sizes = dict(pixel_sizes_um or {})
        self._pixel_size = pixel_size_um
        self._fallback_pixel_size = fallback_pixel_size
        self.on_error = on_error
        self.recorder = recorder if recorder is not None else Recorder()
        self.layout = layout if layout is not None else ImageLayout(self.recorder.folder)
        self._clock = clock
        self._progress = progress
        self._observers = tuple(observers)
        self._pending: dict[tuple[Any, ...], tuple[FrameRequest, Placement]] = {}
        self._stored_only: dict[tuple[Any, ...], tuple[FrameRequest, Placement]] = {}
        """Images of an abandoned follow-up: stored where they belong, not decided on."""
        self._lock = threading.Lock()
        self._t0 = clock()
        self._frames = 0
        self._screen_frames = 0
        self._follow_frames = 0
        self._errors = 0
        self._stop_requested = False
        self.finished = False
        self.latencies_ms: list[float] = []
        self.unrequested_images = 0
        """Images the hook did not request (e.g. a script's own events): saved, not classified."""
        self.calibration: dict[str, ObjectiveCalibration] = {}
        """Micro-Manager's calibration of each objective the protocol uses (``from_protocol``)."""

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_protocol(
        cls,
        protocol: Protocol,
        core: Any,
        *,
        classifier: Any = None,
        classify: FrameClassifier | None = None,
        out_dir: str | Path | None = None,
        stage_limits: Limits = NO_LIMITS,
        source: str = "<protocol>",
        **kwargs: Any,
    ) -> SmartHook:
        """Build the hook for a protocol on a connected core.

        Screening positions without x/y (no positions given) or without z use the stage's
        current position. Presets are checked against the core's config groups. When
        ``out_dir`` is given, ``cells.csv`` and ``decisions.jsonl`` are written there.

        Raises
        ------
        ProtocolError
            If a preset does not exist on the microscope, a phase is not a class of the model,
            or a screening position lies outside the stage limits.
        ModelBundleError
            If the model bundle cannot be loaded.
        """
        parts = prepare_hook(protocol, core, classifier=classifier, classify=classify,
                             out_dir=out_dir, stage_limits=stage_limits, source=source)
        m = protocol.microscope
        hook = cls(
            parts.planner,
            classify=parts.classify,
            preset_properties=lambda g, p: corecalls.preset_properties(core, g, p),
            objective_group=m.objective_group,
            pixel_sizes_um=protocol.pixel_sizes_um(),
            fallback_pixel_size=lambda: float(corecalls.call(core, "getPixelSizeUm")),
            on_error=protocol.on_error,
            recorder=parts.recorder,
            latency_budget_ms=protocol.latency_budget_ms,
            nucleus_diameter_um=protocol.detection.diameter_um,
            **kwargs,
        )
        hook.calibration = parts.calibration
        return hook

    @classmethod
    def from_objects(
        cls,
        core: Any,
        *,
        screening: Screening,
        triggers: Sequence[Trigger],
        classifier: Any,
        detection: Detection = DEFAULT_DETECTION,
        objectives: Mapping[str, ObjectiveSpec] | None = None,
        objective_group: str = "Objective",
        channel_group: str = "Channel",
        on_error: Literal["continue", "stop"] = "continue",
        out_dir: str | Path | None = None,
        stage_limits: Limits = NO_LIMITS,
        **kwargs: Any,
    ) -> SmartHook:
        """Build the hook from protocol parts and a loaded ``Classifier`` (no protocol file).

        Raises the same errors as ``from_protocol``.
        """
        protocol = protocol_from_objects(
            screening=screening, triggers=triggers, classifier=classifier, detection=detection,
            objectives=objectives, objective_group=objective_group,
            channel_group=channel_group, on_error=on_error)
        return cls.from_protocol(protocol, core, classifier=classifier, out_dir=out_dir,
                                 stage_limits=stage_limits, source="<objects>", **kwargs)

    # --- pycromanager API -------------------------------------------------------------------------

    def first_event(self) -> AcquisitionEvent:
        """The first screening event: pass it to ``Acquisition.acquire``."""
        events = self._register(self.planner.start())
        return events[0]

    def __call__(self, image: np.ndarray, metadata: dict[str, Any], event_queue: Any) -> Any:
        """pycromanager ``image_process_fn``: returns (image, metadata) for pycromanager to save,
        or None for a follow-up image the hook wrote into its own data set (with ``out_dir``);
        a function of yours that calls the hook must pass that None on."""
        t_in = self._clock()
        key = axes_key(metadata.get("Axes", {}))
        with self._lock:
            found = self._pending.pop(key, None)
            orphan = self._stored_only.pop(key, None) if found is None else None
        if orphan is not None:
            return self._store(image, metadata, *orphan, None, None)
        if found is None:  # not one of ours: save it, decide nothing, say so
            self._unrequested(metadata)
            return image, metadata
        req, placement = found
        if self.finished:  # queued before the end: kept where it belongs, nothing decided
            return self._store(image, metadata, req, placement, None, None)
        self._frames += 1
        index = self._frames - 1
        if req.mode == SCREEN:
            self._screen_frames += 1
        else:
            self._follow_frames += 1
        time_s = float(metadata.get("ElapsedTime-ms", 0.0)) / 1000.0
        records: list[Decision] = []
        rows: list[dict[str, Any]] = []
        frame: Frame | None
        try:
            frame, rows, errors = self._observe(image, metadata, req, index, time_s)
            records += errors
            step = self.planner.on_frame(frame)
            if step.cells is not None and len(step.cells) == len(rows):
                for row, cell in zip(rows, step.cells, strict=True):
                    row["track"] = cell.track if cell.track is not None else ""
                    row["parent_track"] = cell.parent if cell.parent is not None else ""
            if self._stop_requested:
                end = (Decision("stop", reason="on_error: stop after a hook failure")
                       if errors and self.on_error == "stop" else Decision("interrupted"))
                step = Step(decisions=(*step.decisions, end), done=True)
        except Exception as e:
            frame = None
            step = self._failed(e, time_s, records, where="decide")
        try:
            events = self._register(step)
        except Exception as e:
            events = []
            step = replace(self._failed(e, time_s, records, where="events"), done=True)
        for ev in events:
            event_queue.put(ev)
        if step.done or not events and not self._pending:
            event_queue.put(None)
            self.finished = True
        latency_ms = (self._clock() - t_in) * 1000.0
        self.latencies_ms.append(latency_ms)
        over = self._check_budget(index, req, latency_ms)
        stored = self._store(image, metadata, req, placement, index,
                             frame.pixel_size_um if frame is not None else None, records)
        if req.mode == SCREEN or not self.layout.writes_followups or stored is not None:
            # saved by pycromanager (a follow-up image too when its data set refused it)
            where = Placement(self.layout.screening_dataset, req.axes())
        else:
            where = placement
        self.recorder.frame(index, time_s, req, [*records, *step.decisions], rows, latency_ms,
                            pixel_size_um=frame.pixel_size_um if frame is not None else None,
                            over_budget=over, placement=where)
        try:  # a failing observer or progress display must not stop the acquisition
            if frame is not None:
                if step.cells is not None and frame.cells is not None \
                        and len(step.cells) == len(frame.cells):
                    frame = replace(frame, cells=step.cells)  # as the planner saw them
                for obs in self._observers:
                    obs(frame)
            if self._progress is not None:
                self._progress(self.progress())
        except Exception:
            log.exception("observer or progress callback failed on frame %d", index)
        return stored

    image_process_fn = __call__

    def set_screening_dataset(self, path: str | Path) -> None:
        """Record where pycromanager saves the screening images (its data set folder, e.g.
        ``acq.get_dataset().path``), so every image row names it; relative to the hook's folder
        when it lies inside it."""
        p = Path(path)
        folder = self.recorder.folder
        if folder is not None:
            try:
                p = p.resolve().relative_to(folder.resolve())
            except ValueError:
                pass
        self.layout.screening_dataset = p.as_posix()

    def request_stop(self) -> None:
        """End the acquisition at the next image (e.g. on Ctrl-C)."""
        self._stop_requested = True

    def note(self, record: Decision | Mapping[str, Any]) -> None:
        """Append a decision made outside the hook (e.g. the run was interrupted)."""
        rec = record.to_record() if isinstance(record, Decision) else record
        self.recorder.note({"frame": self._frames - 1, **rec})

    def progress(self) -> Progress:
        return Progress(
            frames=self._frames, screening_frames=self._screen_frames,
            followup_frames=self._follow_frames, triggers_fired=self.planner.triggers_fired,
            errors=self._errors, elapsed_s=self._clock() - self._t0,
            last_latency_ms=self.latencies_ms[-1] if self.latencies_ms else 0.0,
            mode="follow-up" if self.planner.in_followup else "screening",
            last_decision=self.recorder.last_decision, over_budget=self._over_budget,
        )

    def close(self, report: bool = True) -> None:
        """Close the output files and follow-up data sets (idempotent) and, when the hook writes
        into a folder, write ``report.html`` there (``report=False`` to skip it; a failing report
        is logged, never raised)."""
        self.layout.close()
        self.recorder.close()
        self._say_what_was_not_done()
        if report and self.recorder.folder is not None:
            write_report_quietly(self.recorder.folder)
