"""One smart acquisition from a protocol: connect, build the hook, run pycromanager, write the
outputs, end cleanly (also on Ctrl-C / SIGTERM).

Outputs in the run folder: the screening images in the NDTiff data set written by pycromanager
(``screening_1/``), each follow-up in NDTiff data sets of its own (``followup_001/...``, see
``smartscope.acquire.datasets``), ``cells.csv``, ``frames.csv``, ``decisions.jsonl``,
``run.json`` (protocol, package versions, model card hash, summary) and ``report.html`` (written
last).
"""

from __future__ import annotations

import datetime as _dt
import errno
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from smartscope.acquire import corecalls
from smartscope.acquire.capture import SimCapture
from smartscope.acquire.connect import ScopeHandle, connect
from smartscope.acquire.datasets import SCREENING_NAME
from smartscope.acquire.engine import watch_event_submissions
from smartscope.acquire.hook import Progress, SmartHook, write_report_quietly
from smartscope.acquire.prepare import screening_in_place
from smartscope.acquire.runrecord import RunStatus, RunSummary, fill_summary, write_run_json
from smartscope.acquire.supervise import (
    DeviceFailure,
    InterruptGuard,
    Watchdog,
    await_acquisition,
    await_quietly,
)
from smartscope.classify.cells import FrameClassifier
from smartscope.decide import Frame, format_scores, summarise
from smartscope.errors import MicroscopeError, OutputError
from smartscope.outputs import check_dir_target
from smartscope.protocol import (
    MicroManagerMicroscope,
    Protocol,
    ReplayMicroscope,
    SimulatedMicroscope,
)

log = logging.getLogger(__name__)

DATASET_NAME = SCREENING_NAME


def output_dir(protocol: Protocol, now: _dt.datetime, protocol_name: str = "protocol") -> Path:
    """``output.directory / output.name`` with the name template filled in."""
    seed = getattr(protocol.microscope, "seed", "")
    name = protocol.output.name.format(
        protocol=protocol_name, date=now.strftime("%Y%m%d"), time=now.strftime("%H%M%S"),
        seed=seed,
    )
    return Path(protocol.output.directory) / name


class Run:
    """A smart acquisition run.

    Parameters
    ----------
    protocol : Protocol
    out_dir : path
        Run folder (created; must not hold a previous run's ``run.json``).
    simulate : bool
        Use the simulated microscope whatever the protocol names.
    scope : ScopeHandle, optional
        An already connected microscope (the run then does not connect or disconnect).
    classifier : optional
        A loaded ``Classifier`` (default: load the protocol's bundle).
    classify : FrameClassifier, optional
        Replaces detection + classification of a frame (default: ``classify_frame`` with the
        classifier), e.g. to wrap it with checks or to inject faults.
    source : str
        The protocol's file name, for error messages and ``run.json``.
    clock : callable
        Monotonic seconds.
    progress : callable, optional
        Called with a ``Progress`` after every frame (from the hook's thread).
    observers : sequence of callables
        Called with every decided ``Frame`` (from the hook's thread).
    stall_timeout_s : float, optional
        A frame whose hardware or camera step started but whose image has not arrived after
        this many seconds ends the run as a device failure (``MicroscopeError``; images so far
        are kept and the data set is closed). Default: the protocol's
        ``microscope.stall_timeout_s`` (60 s unless set).
    write_report : bool
        Write ``report.html`` into the run folder at the end (also after a failure or an
        interrupt); its path is then in ``report``.
    out_option : str
        The name of ``out_dir`` in messages (``smartscope run`` passes its flag, ``--out``).
    """

    def __init__(
        self,
        protocol: Protocol,
        out_dir: str | Path,
        *,
        simulate: bool = False,
        scope: ScopeHandle | None = None,
        classifier: Any = None,
        classify: FrameClassifier | None = None,
        source: str = "<protocol>",
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[Progress], None] | None = None,
        observers: Sequence[Callable[[Frame], None]] = (),
        stall_timeout_s: float | None = None,
        write_report: bool = True,
        out_option: str = "out_dir",
    ) -> None:
        self.stall_timeout_s = (protocol.microscope.stall_timeout_s if stall_timeout_s is None
                                else stall_timeout_s)
        self.protocol = protocol
        self.out_dir = Path(out_dir)
        self.out_option = out_option
        self.simulate = simulate or isinstance(protocol.microscope, SimulatedMicroscope)
        self._replay = not self.simulate and isinstance(protocol.microscope, ReplayMicroscope)
        self.scope = scope
        self.classifier = classifier
        self.classify = classify
        self.source = source
        self.clock = clock
        self.progress = progress
        self.observers = tuple(observers)
        self.hook: SmartHook | None = None
        self._run_times: list[tuple[int, float]] = []
        self.write_report = write_report
        self.report: Path | None = None
        self.summary = RunSummary(out_dir=str(self.out_dir))
        self._acq: Any = None

    def execute(self) -> RunSummary:
        """Run to the end (the protocol ends it, ``stop`` fires, or Ctrl-C / SIGTERM).

        Raises
        ------
        ProtocolError, ModelBundleError, MicroscopeError, DependencyError
            Before the acquisition starts, with a one-line message.
        """
        m = self.protocol.microscope
        inputs = ([p for p in (m.movie, m.truth) if p is not None] if self._replay
                  and isinstance(m, ReplayMicroscope) else [])
        check_dir_target(self.out_dir, option=self.out_option, inputs=inputs)
        if (self.out_dir / "run.json").exists():
            raise OutputError(
                f"{self.out_dir}: already holds a run (run.json); choose another "
                f"{self.out_option} folder"
            )
        if self.out_dir.is_dir() and any(self.out_dir.iterdir()):
            raise OutputError(
                f"{self.out_dir}: holds files that this run did not write; choose a new or "
                f"empty {self.out_option} folder"
            )
        if self._replay and self.scope is None:  # a bad movie or labels: before any output
            from smartscope.acquire.replay import check_replay

            check_replay(self.protocol, self.source)
        if self.classifier is None:
            from smartscope.classify import Classifier

            self.classifier = Classifier(self.protocol.model.bundle,
                                         num_threads=self.protocol.model.num_threads)
        from smartscope.protocol import check_phases

        check_phases(self.protocol, self.classifier.classes, self.source)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        t0 = self.clock()
        with InterruptGuard():  # from the first run.json to the last: one interrupt, then closing
            return self._run_and_record(t0)

    def _run_and_record(self, t0: float) -> RunSummary:
        self._write_run_json(t0, started=True)
        ended_by: BaseException | None = None
        try:
            if self.scope is not None:
                self._acquire(self.scope)
            else:
                with connect(self.protocol, simulate=self.simulate) as scope:
                    self.scope = scope
                    self._acquire(scope)
                    self._score(scope)
        except BaseException as e:
            ended_by = e
            self.summary.error = f"{type(e).__name__}: {e}"
            if self.summary.status == "running":  # ended before _acquire could summarise
                status: RunStatus = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
                if self.hook is not None:
                    fill_summary(self.summary, self.hook, status)
                else:
                    self.summary.status = status
            ds = _dataset_dir(self.out_dir)
            self.summary.dataset = str(ds) if ds is not None else None
            raise
        finally:
            if self.hook is not None:
                self.hook.close(report=False)  # the report reads the final run.json
            self.summary.duration_s = round(self.clock() - t0, 3)
            if self.summary.status == "running":
                self.summary.status = "failed"
            try:
                self._write_run_json(t0, started=False)
            except OSError as e:  # a full disk: the error that ended the run goes first
                if ended_by is None:
                    raise OutputError(
                        f"{self.out_dir / 'run.json'}: cannot be written ({e.strerror or e}); "
                        f"the run's images and tables are in {self.out_dir}; free space, then "
                        f"run 'smartscope repair {self.out_dir}' to record its end"
                    ) from e
                log.error("%s: the run's end could not be recorded (%s)",
                          self.out_dir / "run.json", e.strerror or e)
            if self.write_report:
                self.report = write_report_quietly(self.out_dir)
        return self.summary

    # --- internals ------------------------------------------------------------------------------

    def _acquire(self, scope: ScopeHandle) -> None:
        from pycromanager import Acquisition

        protocol = self.protocol
        if scope.kind == "replay":
            from smartscope.acquire.replay import fit_to_recording

            protocol, note = fit_to_recording(protocol, scope.sim)
            if note is not None:
                log.warning("replay: %s", note)
                self.summary.notes.append(note)
        capture = (SimCapture(scope.sim, protocol.triggers, (), self.classifier.classes)
                   if scope.kind == "simulated" and protocol.triggers else None)
        observers = (*self.observers, self._note_time, *((capture,) if capture else ()))
        hook = SmartHook.from_protocol(
            protocol, scope.core, classifier=self.classifier, classify=self.classify,
            out_dir=self.out_dir,
            stage_limits=scope.stage_limits, source=self.source, clock=self.clock,
            progress=self.progress, observers=observers,
        )
        self.hook = hook
        if capture is not None:
            capture.positions = hook.planner.s.positions
        scope.info["pixel_to_stage"] = {o: c.record() for o, c in hook.calibration.items()}
        interrupted = False
        hook_t0 = self.clock()
        watchdog = Watchdog(self.stall_timeout_s)
        port = ({"port": self.protocol.microscope.port}
                if isinstance(self.protocol.microscope, MicroManagerMicroscope)
                and scope.kind == "micromanager" else {})
        screening_in_place(protocol, scope.core)  # the data set's summary: its pixel size

        def process(image: Any, metadata: Any, event_queue: Any) -> Any:
            # a follow-up image is not saved by pycromanager: no notification; its axes say
            # which announced frame arrived
            watchdog.arrived(metadata.get("Axes") if isinstance(metadata, dict) else None)
            return hook(image, metadata, event_queue)

        acq = Acquisition(directory=str(self.out_dir), name=DATASET_NAME,
                          image_process_fn=process, notification_callback_fn=watchdog, **port)
        self._acq = acq
        watch_event_submissions(acq)  # a device error is seen at once, with its own message
        ds = _dataset_dir(self.out_dir)
        if ds is not None:  # every image row names the data set it lies in
            hook.set_screening_dataset(ds)
        try:
            acq.acquire(hook.first_event())
            await_acquisition(acq, watchdog)
        except DeviceFailure as e:
            hook.request_stop()
            fill_summary(self.summary, hook, "failed")
            ds = _dataset_dir(self.out_dir)
            self.summary.dataset = str(ds) if ds is not None else None
            disk = _storage_error(e)
            try:  # best effort: on a full disk the decisions log cannot take it either
                hook.note({"event": "error", "where": "storage" if disk else "microscope",
                           "error": str(e), "on_error": "stop"})
            except OutputError as note_error:
                log.error("%s", note_error)
            if disk is not None:
                raise OutputError(
                    f"{self.out_dir}: the images could not be saved ({disk.strerror or disk}); "
                    f"the acquisition stopped at image {self.summary.frames}; the images saved "
                    "before are kept there; "
                    f"free space, run 'smartscope repair {self.out_dir}' (the data set could not "
                    "be closed), then run again into a new folder"
                ) from e.__cause__
            msg = (f"the microscope failed during the acquisition ({e}); the "
                   f"{self.summary.frames} image(s) acquired before are saved in "
                   f"{self.out_dir}; check the device, then run again")
            raise MicroscopeError(msg) from e.__cause__
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: ending the acquisition, keeping what was acquired")
            hook.request_stop()
            # a second Ctrl-C only logs from here on (InterruptGuard): the data set closes
            acq.abort()  # cancels queued events and wakes an event waiting for its time
            acq.mark_finished()  # lets pycromanager's event thread end
            await_quietly(acq)
            elapsed = round(self.clock() - hook_t0, 3)
            hook.note({"event": "interrupted", "run_elapsed_s": elapsed})
        self.summary.restored = restore_screening(self.protocol, scope.core, hook)
        stopped = hook.on_error == "stop" and hook.progress().errors > 0
        fill_summary(self.summary, hook, "interrupted" if interrupted else
                     "stopped_on_error" if stopped else "completed")
        if capture is not None:
            try:  # a scoring problem must not cost the run its outputs
                scores = capture.scores(hook.recorder.decision_log)
                if scores is not None:
                    self.summary.event_capture = summarise(scores)
                    self.summary.event_capture_lines = format_scores(scores)
            except Exception as e:
                log.exception("event capture could not be scored")
                self.summary.notes.append(f"event capture could not be scored: {e}")
        ds = _dataset_dir(self.out_dir)
        self.summary.dataset = str(ds) if ds is not None else None

    def _note_time(self, frame: Frame) -> None:
        self._run_times.append((frame.index, frame.time_s))

    def _score(self, scope: ScopeHandle) -> None:
        """Replay: ``replay_frames.csv`` (the recorded frame each image showed) and the event
        capture against the movie's labelled nuclei (when it has them)."""
        if scope.kind != "replay" or self.hook is None:
            return
        from smartscope.acquire.replay import score_replay, write_frames_csv

        frames = scope.sim.frames
        write_frames_csv(self.out_dir / "replay_frames.csv", frames,
                         in_run={i + 1 for i, _ in self._run_times})  # hook frame i: image i + 1
        from smartscope.acquire.replay import interpolation_note, recording_end_note

        for note in (interpolation_note(scope.sim, frames), recording_end_note(scope.sim, frames)):
            if note is not None:
                self.summary.notes.append(note)
        if scope.truth is None:
            return
        from smartscope.decide.capture import format_scores, summarise

        self.hook.close()
        try:
            scores = score_replay(self.protocol, scope, self.out_dir, self._run_times,
                                  tuple(self.classifier.classes))
            self.summary.event_capture = summarise(scores)
            self.summary.event_capture_lines = format_scores(scores)
        except Exception as e:  # scoring must not turn a finished acquisition into a failure
            log.exception("event capture could not be scored")
            self.summary.notes.append(f"event capture could not be scored: {e}")

    def _write_run_json(self, t0: float, started: bool) -> None:
        write_run_json(self.out_dir, self.summary, protocol=self.protocol, source=self.source,
                       classifier=self.classifier, simulated=self.simulate or self._replay,
                       scope=self.scope, started=started)


def restore_screening(protocol: Protocol, core: Any, hook: SmartHook) -> dict[str, Any]:
    """Put the screening objective, channel and focus back at the end of a run (a run that
    ended in a follow-up leaves the high-magnification objective in place otherwise).

    Returns what was restored (for ``run.json``). A device that refuses is logged and recorded
    in ``decisions.jsonl``; the run's data are kept.
    """
    m, sc = protocol.microscope, protocol.screening
    z = hook.planner.s.positions[0].z_um if hook.planner.s.positions else None
    try:
        corecalls.call(core, "setConfig", m.objective_group, sc.objective)
        corecalls.call(core, "setConfig", m.channel_group, sc.channel)
        corecalls.call(core, "waitForSystem")
        if z is not None:
            corecalls.call(core, "setPosition", float(z))
            corecalls.call(core, "waitForSystem")
    except Exception as e:  # the run is over: report, never lose what was acquired
        log.error("could not put the microscope back to %s / %s: %s", sc.objective, sc.channel, e)
        hook.note({"event": "error", "where": "restore_screening", "error": str(e)})
        return {"error": str(e)}
    log.info("microscope back to %s / %s, z %s um", sc.objective, sc.channel, z)
    return {"objective": sc.objective, "channel": sc.channel, "z_um": z}


def _storage_error(e: BaseException) -> OSError | None:
    """The disk error (full, over quota, read-only, failing) behind a failed acquisition, if
    that is what ended it: pycromanager's saving thread raised it and the engine aborted."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _STORAGE_ERRNOS:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def _dataset_dir(out_dir: Path) -> Path | None:
    found = sorted(p for p in out_dir.glob(f"{DATASET_NAME}*") if p.is_dir())
    return found[-1] if found else None
