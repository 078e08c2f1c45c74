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
import logging
import signal
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from smartscope.acquire import corecalls
from smartscope.acquire.capture import SimCapture
from smartscope.acquire.connect import ScopeHandle, connect
from smartscope.acquire.datasets import SCREENING_NAME
from smartscope.acquire.engine import engine_failure
from smartscope.acquire.hook import Progress, SmartHook, write_report_quietly
from smartscope.acquire.sinks import file_sha256, package_versions, write_json_atomic
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


RunStatus = Literal["running", "completed", "failed", "interrupted", "stopped_on_error"]
"""How a run ended (``running`` until it does)."""


@dataclass
class RunSummary:
    """What a run did (also stored in ``run.json`` under ``summary``)."""

    out_dir: str
    status: RunStatus = "running"
    frames: int = 0
    screening_frames: int = 0
    followup_frames: int = 0
    triggers_fired: int = 0
    errors: int = 0
    duration_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_budget_ms: float | None = None
    frames_over_budget: int = 0
    dataset: str | None = None
    """The screening data set."""
    followup_datasets: list[str] = field(default_factory=list)
    """The follow-up data sets, relative to the run folder, in the order they were written."""
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    event_capture: dict[str, Any] | None = None
    event_capture_lines: list[str] = field(default_factory=list)
    late_starts: int = 0
    """Frames that started late because the work before them did not fit the interval."""
    restored: dict[str, Any] = field(default_factory=dict)
    """The screening objective, channel and focus put back at the end (or the error)."""


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
        with _InterruptGuard():  # from the first run.json to the last: one interrupt, then closing
            return self._run_and_record(t0)

    def _run_and_record(self, t0: float) -> RunSummary:
        self._write_run_json(t0, started=True)
        try:
            if self.scope is not None:
                self._acquire(self.scope)
            else:
                with connect(self.protocol, simulate=self.simulate) as scope:
                    self.scope = scope
                    self._acquire(scope)
                    self._score(scope)
        except BaseException as e:
            self.summary.error = f"{type(e).__name__}: {e}"
            if self.summary.status == "running":  # ended before _acquire could summarise
                status: RunStatus = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
                if self.hook is not None:
                    self._summarise(self.hook, status)
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
            self._write_run_json(t0, started=False)
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
        watchdog = _Watchdog(self.stall_timeout_s)
        port = ({"port": self.protocol.microscope.port}
                if isinstance(self.protocol.microscope, MicroManagerMicroscope)
                and scope.kind == "micromanager" else {})
        _screening_in_place(protocol, scope.core)  # the data set's summary: its pixel size

        def process(image: Any, metadata: Any, event_queue: Any) -> Any:
            watchdog.arrived()  # a follow-up image is not saved by pycromanager: no notification
            return hook(image, metadata, event_queue)

        acq = Acquisition(directory=str(self.out_dir), name=DATASET_NAME,
                          image_process_fn=process, notification_callback_fn=watchdog, **port)
        self._acq = acq
        ds = _dataset_dir(self.out_dir)
        if ds is not None:  # every image row names the data set it lies in
            hook.set_screening_dataset(ds)
        try:
            acq.acquire(hook.first_event())
            _await(acq, watchdog)
        except _DeviceFailure as e:
            hook.request_stop()
            self._summarise(hook, "failed")
            ds = _dataset_dir(self.out_dir)
            self.summary.dataset = str(ds) if ds is not None else None
            msg = (f"the microscope failed during the acquisition ({e}); the "
                   f"{self.summary.frames} image(s) acquired before are saved in "
                   f"{self.out_dir}; check the device, then run again")
            hook.note({"event": "error", "where": "microscope", "error": str(e),
                       "on_error": "stop"})
            raise MicroscopeError(msg) from e.__cause__
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: ending the acquisition, keeping what was acquired")
            hook.request_stop()
            # a second Ctrl-C only logs from here on (_InterruptGuard): the data set closes
            acq.abort()  # cancels queued events and wakes an event waiting for its time
            acq.mark_finished()  # lets pycromanager's event thread end
            _await_quietly(acq)
            elapsed = round(self.clock() - hook_t0, 3)
            hook.note({"event": "interrupted", "run_elapsed_s": elapsed})
        self.summary.restored = restore_screening(self.protocol, scope.core, hook)
        stopped = hook.on_error == "stop" and hook.progress().errors > 0
        self._summarise(hook, "interrupted" if interrupted else
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

    def _summarise(self, hook: SmartHook, status: RunStatus) -> None:
        p = hook.progress()
        lat = hook.latencies_ms
        self.summary.status = status
        self.summary.frames = p.frames
        self.summary.screening_frames = p.screening_frames
        self.summary.followup_frames = p.followup_frames
        self.summary.triggers_fired = p.triggers_fired
        self.summary.late_starts = hook.planner.late_starts
        self.summary.errors = p.errors
        self.summary.latency_budget_ms = hook.latency_budget_ms
        self.summary.frames_over_budget = p.over_budget
        self.summary.followup_datasets = hook.layout.datasets()
        if lat:
            ordered = sorted(lat)
            self.summary.latency_ms = {
                "median": round(statistics.median(lat), 2),
                "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
                "max": round(ordered[-1], 2),
            }

    def _write_run_json(self, t0: float, started: bool) -> None:
        card = getattr(self.classifier, "card", None)
        bundle = Path(self.protocol.model.bundle)
        data = {
            "protocol_file": self.source,
            "protocol": self.protocol.model_dump(mode="json"),
            "simulated": self.simulate or self._replay,
            "microscope": self.scope.kind if self.scope is not None else None,
            "scope_info": self.scope.info if self.scope is not None else {},
            "started": _dt.datetime.now().isoformat(timespec="seconds") if started else None,
            "packages": package_versions(),
            "model": {
                "bundle": str(bundle),
                "name": getattr(card, "name", None),
                "classes": list(getattr(self.classifier, "classes", ())),
                "card_sha256": file_sha256(bundle / "model_card.json"),
                "model_sha256": file_sha256(bundle / "model.tflite"),
            },
            "summary": asdict(self.summary),
        }
        path = self.out_dir / "run.json"
        if not started and path.exists():
            import json

            data["started"] = json.loads(path.read_text()).get("started")
        write_json_atomic(path, data)


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


def _screening_in_place(protocol: Protocol, core: Any) -> None:
    """The screening objective and channel set before the acquisition starts, so the screening
    data set's summary metadata (read from the microscope when it is created) holds the
    screening pixel size. A device that refuses is logged: the first event sets them again."""
    m, sc = protocol.microscope, protocol.screening
    try:
        corecalls.call(core, "setConfig", m.objective_group, sc.objective)
        corecalls.call(core, "setConfig", m.channel_group, sc.channel)
        corecalls.call(core, "waitForSystem")
    except Exception as e:
        log.warning("could not set %s / %s before the run: %s", sc.objective, sc.channel, e)


def _await(acq: Any, watchdog: _Watchdog | None = None) -> None:
    """``await_completion`` in short waits, so Ctrl-C reaches the main thread promptly; a device
    failure (reported by the engine, or a frame stuck past the watchdog's timeout) raises
    ``_DeviceFailure`` after ending the acquisition."""
    done = threading.Event()
    error: list[BaseException] = []

    def wait() -> None:
        try:
            acq.await_completion()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            error.append(e)
        finally:
            done.set()

    threading.Thread(target=wait, name="smartscope-await", daemon=True).start()
    while not done.wait(0.2):
        failure = engine_failure(acq)
        why = _root_message(failure) if failure is not None else None
        if why is None and watchdog is not None:
            why = watchdog.stalled()
        if why is not None:
            # pycromanager's Python engine swallows a device error (or aborts on it) while its
            # event thread keeps waiting for events, so await_completion would never return:
            # end the acquisition here (the data set is closed as on Ctrl-C)
            acq.abort()
            acq.mark_finished()
            done.wait(30.0)
            raise _DeviceFailure(why) from failure
    if error:
        failure = engine_failure(acq) or error[0]
        raise _DeviceFailure(_root_message(failure)) from failure


class _DeviceFailure(Exception):
    """A device error ended the acquisition (the message is the device's)."""


class _Watchdog:
    """pycromanager ``notification_callback_fn`` that notices a frame the microscope never
    delivers: a hardware or camera step started and no image followed within ``timeout_s``.

    Waiting for an event's start time is not a stall (no notification is posted then).
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._busy_since: float | None = None
        self._step = ""
        self._axes: Any = None

    def __call__(self, notification: Any) -> None:
        milestone = str(getattr(notification, "milestone", ""))
        with self._lock:
            if milestone in ("image_saved", "acq_events_finished", "data_sink_finished"):
                self._busy_since = None
            elif milestone in ("pre_hardware", "pre_z_drive", "post_hardware", "pre_snap",
                               "post_snap", "pre_sequence_started"):
                if self._busy_since is None:
                    self._busy_since = self._clock()
                self._step = milestone
                payload = getattr(notification, "payload", None)
                self._axes = payload if payload else self._axes

    def arrived(self) -> None:
        """An image reached the hook: the microscope delivered (whether or not pycromanager
        saves it)."""
        with self._lock:
            self._busy_since = None

    def stalled(self) -> str | None:
        """Why the acquisition is stuck, or None."""
        with self._lock:
            if self._busy_since is None or self._clock() - self._busy_since < self.timeout_s:
                return None
            what = ("the camera did not deliver the image" if "snap" in self._step
                    or "sequence" in self._step else
                    "a device (objective, channel, stage or focus) did not reach its position")
            return (f"{what} for the frame {self._axes} within {self.timeout_s:g} s (last step: "
                    f"{self._step}); pycromanager's log above names the device error")


def _root_message(e: BaseException) -> str:
    """The innermost cause's message: the device error behind the engine's wrapper."""
    seen: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    root = seen[-1]
    return str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__


def _await_quietly(acq: Any) -> None:
    try:
        acq.await_completion()
    except AttributeError:
        # the waiting thread of ``_await`` completed it first: pycromanager then drops its
        # engine object and a second await_completion fails on it (no traceback for Ctrl-C)
        log.debug("acquisition already completed by the waiting thread", exc_info=True)
    except Exception:
        log.exception("while closing the aborted acquisition")


class _InterruptGuard:
    """Ctrl-C and SIGTERM while a run is recorded (main thread only): the first raises
    KeyboardInterrupt, so the acquisition ends and keeps what it acquired; every later one only
    logs, so a second Ctrl-C cannot abandon the data set or leave run.json unwritten. The
    previous handlers come back when the run's last file is written."""

    def __enter__(self) -> None:
        self._old: list[tuple[int, Any]] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old.append((sig, signal.signal(sig, self._first)))

    def _first(self, signum: int, frame: object) -> None:
        for sig, _ in self._old:
            signal.signal(sig, _closing_please_wait)
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old:
            signal.signal(sig, old)


def _closing_please_wait(signum: int, frame: object) -> None:
    log.warning("still closing the run after the interrupt (data set, run.json, report); the "
                "images are kept (SIGKILL would leave the data set unclosed: then run "
                "`smartscope repair` on the run folder)")


def _dataset_dir(out_dir: Path) -> Path | None:
    found = sorted(p for p in out_dir.glob(f"{DATASET_NAME}*") if p.is_dir())
    return found[-1] if found else None
