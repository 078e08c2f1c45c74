"""Protocols on the replay microscope: its configuration from a protocol, the connection, the
``--replay`` shortcut, and the screening cut to the recording's length."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from smartscope.acquire.connect import sim_extra_missing
from smartscope.decide.geometry import Limits
from smartscope.errors import ProtocolError
from smartscope.protocol import Protocol, ReplayMicroscope

log = logging.getLogger(__name__)

#: numerical apertures of common objectives (used for the defocus blur); others are guessed
_NA = {"4x": 0.13, "10x": 0.3, "20x": 0.75, "40x": 0.95, "60x": 1.4, "63x": 1.4, "100x": 1.45}
_STAGE_TRAVEL_UM = 5000.0


def with_replay(protocol: Protocol, movie: Path, *, pixel_size_um: float | None = None,
                frame_interval_s: float | None = None, truth: Path | None = None,
                objective: str | None = None, frame_pattern: str | None = None) -> Protocol:
    """The protocol with its microscope replaced by a replay of ``movie`` (the CLI's
    ``--replay``): objectives, channel group and stage limits are kept; the camera orientation
    is not (the replay's camera shows the recording upright: a real microscope's flips would send
    ``centre_on_cell`` to the mirrored place).

    Raises
    ------
    ProtocolError
        Missing pixel size or frame interval (and the movie does not carry them).
    """
    from smartscope.protocol import parse_protocol

    data = protocol.model_dump(mode="json")
    old = data["microscope"]
    keep = ("objective_group", "channel_group", "objectives", "stage_limits", "stall_timeout_s")
    new: dict[str, Any] = {k: old[k] for k in keep if k in old}
    if old.get("type") == "replay":  # a replay protocol: keep its settings, replace what is given
        new = {k: v for k, v in old.items() if v is not None}
    new.update({"type": "replay", "movie": str(Path(movie).resolve())})
    if pixel_size_um is not None:
        new["pixel_size_um"] = pixel_size_um
    if frame_interval_s is not None:
        new["frame_interval_s"] = frame_interval_s
    if truth is not None:
        new["truth"] = str(Path(truth).resolve())
    if objective is not None:
        new["objective"] = objective
    if frame_pattern is not None:
        new["frame_pattern"] = frame_pattern
    data["microscope"] = new
    return parse_protocol(data, source="--replay")


def replay_config_for(protocol: Protocol, frame_interval_s: float | None = None) -> Any:
    """The ``ReplayConfig`` of a replay protocol: every objective and channel preset it names.

    ``frame_interval_s`` is the recording's interval when the protocol leaves it to the movie's
    metadata (it sets the default ``time_scale``).
    """
    from smartscope.sim.config import (
        SimObjective,
        default_na,
        magnification,
        named_magnification,
    )
    from smartscope.sim.replay import DEFAULT_CHANNELS, ReplayConfig

    m = protocol.microscope
    assert isinstance(m, ReplayMicroscope)
    recorded = m.objective or protocol.screening.objective
    names: set[str] = {recorded, protocol.screening.objective, *m.objectives}
    for t in protocol.triggers:
        for a in t.actions:
            name = getattr(a, "objective", None)
            if name:
                names.add(str(name))
    rec_mag = magnification(recorded)
    objectives = {}
    for name in sorted(names):
        mag = magnification(name)
        spec = m.objectives.get(name)
        pixel = spec.pixel_size_um if spec is not None and spec.pixel_size_um else None
        if pixel is None and name != recorded and None in (named_magnification(name),
                                                           named_magnification(recorded)):
            raise ProtocolError(
                f"field 'microscope.objectives.{name}.pixel_size_um': not set, and the names "
                f"'{name}' and '{recorded}' (recorded) do not both say a magnification (like "
                f"'60x'); set the pixel size of '{name}' in um/px (or rename the presets)"
            )
        if pixel is None:  # same camera: pixel size scales with magnification
            pixel = (m.pixel_size_um or 1.0) * rec_mag / mag
        objectives[name] = SimObjective(
            magnification=mag, pixel_size_um=pixel, na=_NA.get(name, default_na(mag)),
            parfocal_z_offset_um=spec.parfocal_z_offset_um if spec is not None else 0.0)
    channels = list(DEFAULT_CHANNELS)
    wanted = [protocol.screening.channel] + [
        p for t in protocol.triggers for a in t.actions
        for p in ([a.preset] if a.type == "set_channel" else [])
        + [e.preset for e in getattr(a, "extra_channels", ())]]
    channels += [c for c in dict.fromkeys(wanted) if c not in channels]
    interval = m.frame_interval_s or frame_interval_s
    time_scale = m.time_scale
    if time_scale is None:
        sc = protocol.screening.interval_s
        time_scale = interval / sc if interval and sc > 0 else 1.0
    cx, cy = m.centre_um
    return ReplayConfig(
        movie=m.movie, frame_pattern=m.frame_pattern, pixel_size_um=m.pixel_size_um,
        frame_interval_s=interval, objective=recorded, objectives=objectives,
        channels=tuple(channels), start_channel=protocol.screening.channel,
        sensor_shape_px=m.sensor_px, centre_um=m.centre_um, time_scale=time_scale,
        at_end=m.at_end, background_adu=m.background_adu, seed=m.seed,
        exposure_ms=protocol.screening.exposure_ms,
        x_limits_um=(cx - _STAGE_TRAVEL_UM, cx + _STAGE_TRAVEL_UM),
        y_limits_um=(cy - _STAGE_TRAVEL_UM, cy + _STAGE_TRAVEL_UM),
    )


def check_replay(protocol: Protocol, source: str = "protocol") -> str:
    """Open the movie and read the labels of a replay protocol, before anything is written
    (``run`` calls it before it makes the run folder, ``validate`` to check the protocol).

    Parameters
    ----------
    protocol : Protocol
    source : str
        The protocol file, named in errors.

    Returns
    -------
    str
        What will be replayed, in words.

    Raises
    ------
    ProtocolError
        An objective's pixel size can be told neither from the protocol nor from its name.
    RecordingError
        The movie cannot be replayed (missing, not T x Y x X, colour, unreadable or
        odd-sized frame files, no finite pixel), its pixel size or frame interval is unknown,
        or the labels cannot be read or lie outside the movie.
    """
    from smartscope.errors import RecordingError

    try:
        from smartscope.sim.replay import open_movie, read_labels
    except ImportError as e:
        raise sim_extra_missing("the replay microscope", e) from e
    m = protocol.microscope
    assert isinstance(m, ReplayMicroscope)
    movie = open_movie(m.movie, m.frame_pattern)
    try:
        pixel = m.pixel_size_um or movie.pixel_size_um
        interval = m.frame_interval_s or movie.frame_interval_s
        if pixel is None or interval is None:
            what = "pixel_size_um (--pixel-size-um)" if pixel is None else \
                "frame_interval_s (--frame-interval-s)"
            raise RecordingError(f"{movie.path}: the movie does not carry its "
                                 f"{what.split(' ')[0]}; set microscope.{what}")
        movie.frame(0)  # the first frame decodes (and other pixel types map into 16 bits)
        try:  # objectives whose magnification is unknown
            replay_config_for(protocol, interval)
        except ProtocolError as e:
            raise ProtocolError(f"{source}: {e}") from e
        labels = (read_labels(m.truth, movie.n_frames, movie.shape)
                  if m.truth is not None else [])
        return (f"{movie.n_frames} frames of {movie.shape[0]} x {movie.shape[1]} px "
                f"({movie.source_dtype}) at {pixel:g} um/px, {interval:g} s apart"
                + (f", {len(labels)} labelled nuclei" if m.truth is not None else ""))
    finally:
        movie.close()


@contextlib.contextmanager
def replayed(protocol: Protocol) -> Iterator[Any]:
    """Connect to the replay microscope of a replay protocol (yields a ``ScopeHandle``)."""
    from smartscope.acquire.connect import ScopeHandle

    try:
        from smartscope.sim import replay
    except ImportError as e:
        raise sim_extra_missing("the replay microscope", e) from e
    m = protocol.microscope
    assert isinstance(m, ReplayMicroscope)
    interval = m.frame_interval_s
    if interval is None:  # from the movie's metadata (NDTiff)
        movie = replay.open_movie(m.movie, m.frame_pattern)
        interval = movie.frame_interval_s
        movie.close()
    config = replay_config_for(protocol, interval)
    with replay.start(config) as scope:
        truth = None
        if m.truth is not None:
            labels = replay.read_labels(m.truth, scope.movie.n_frames, scope.movie.shape)
            truth = replay.RecordedTruth(
                labels, n_frames=scope.movie.n_frames, shape=scope.movie.shape,
                pixel_size_um=scope.pixel_size_um, frame_interval_s=scope.frame_interval_s,
                centre_um=config.centre_um, loop=config.at_end == "loop")
        limits = Limits(x_um=tuple(config.x_limits_um), y_um=tuple(config.y_limits_um),
                        z_um=tuple(config.z_limits_um))
        info = {
            "replay": {
                "movie": str(scope.movie.path), "frames": scope.movie.n_frames,
                "frame_shape_px": list(scope.movie.shape),
                "pixel_size_um": scope.pixel_size_um, "frame_interval_s": scope.frame_interval_s,
                "recorded_objective": config.objective, "time_scale": config.time_scale,
                "recording_s": scope.duration_s, "at_end": config.at_end,
                "truth": str(m.truth) if m.truth is not None else None,
                "labels": len(truth.labels) if truth is not None else 0,
                "magnification": {k: round(scope.magnification(k), 4) for k in scope.objectives},
                "note": "objectives other than the recorded one interpolate the recorded pixels "
                        "(magnified or reduced): no real resolution is gained",
            },
            "replay_config": config.model_dump(mode="json"),
        }
        yield ScopeHandle(core=scope.core, kind="replay", stage_limits=limits, sim=scope,
                          info=info, truth=truth)


def fit_to_recording(protocol: Protocol, scope: Any) -> tuple[Protocol, str | None]:
    """With ``at_end: stop``, cut the screening to the recording: its duration becomes at most
    the real time the recording lasts at the replay's time scale.

    Returns the protocol to run and a note saying what was cut (None if nothing was).
    """
    m = protocol.microscope
    if not isinstance(m, ReplayMicroscope) or scope.config.at_end != "stop":
        return protocol, None
    sc = protocol.screening
    real_s = scope.duration_s / scope.config.time_scale
    planned = [v for v in (sc.duration_s,
                           sc.n_timepoints * sc.interval_s if sc.n_timepoints else None) if v]
    if planned and min(planned) <= real_s:
        return protocol, None
    covered = int(-(-real_s // sc.interval_s)) if sc.interval_s > 0 else None
    note = (f"the recording ({scope.movie.n_frames} frames, {scope.duration_s:g} s of sample "
            f"time = {real_s:.1f} s at time scale {scope.config.time_scale:g}) is shorter than "
            f"the protocol's screening: the screening ends with it"
            + (f" after {covered} time point(s)" if covered else "")
            + " (at_end: stop; set microscope.at_end: loop to start the recording over)")
    cut = protocol.model_copy(update={"screening": sc.model_copy(update={"duration_s": real_s})})
    return cut, note


def score_replay(protocol: Protocol, scope: Any, out_dir: Path, run_times: Sequence[
        tuple[int, float]], classes: Sequence[str]) -> dict[str, Any]:
    """Event capture of a finished replay run against the movie's labelled nuclei.

    Parameters
    ----------
    protocol : Protocol
    scope : ScopeHandle
        The replay (``scope.sim``) with its labels (``scope.truth``).
    out_dir : path
        The run folder (its ``decisions.jsonl`` is scored).
    run_times : sequence of (hook frame index, run seconds)
        When the hook's frames were taken (hook frame i is the camera's image i + 1).
    classes : the model's classes

    Returns
    -------
    dict
        Trigger name (and ``"all"``) -> ``TriggerScore``.
    """
    import json

    from smartscope.decide.capture import ScreenedField, score_run
    from smartscope.sim.truth import TimeMap

    m = protocol.microscope
    assert isinstance(m, ReplayMicroscope)
    sim = scope.sim
    frames = {f.index: f for f in sim.frames}
    pairs = [(run_s, frames[i + 1].t_s) for i, run_s in run_times if i + 1 in frames]
    time_map = TimeMap.fit(pairs, scale=sim.config.time_scale)
    until = max((f.t_s for f in frames.values()), default=0.0)
    truth = scope.truth.provider(time_map, until, match_um=m.match_radius_um, link_um=m.link_um)
    h, w = sim.sensor_shape
    ps = sim.objectives[protocol.screening.objective].pixel_size_um
    positions = protocol.screening.position_list() or ()
    centres = [(p.name or f"pos{i}", p.x_um, p.y_um) for i, p in enumerate(positions)]
    fields = [ScreenedField(name, x, y, w * ps, h * ps)
              for name, x, y in (centres or [("here", *sim.config.centre_um)])]
    path = Path(out_dir) / "decisions.jsonl"
    decisions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for d in decisions:  # the cell a trigger acted on, for records that do not name it
        if d.get("event") == "trigger" and not d.get("cell"):
            target = d.get("target") or {}
            acted = target if "x_um" in target else next(iter(d.get("cells") or ()), None)
            if acted is not None:
                d["cell"] = {"x_um": acted["x_um"], "y_um": acted["y_um"]}
    times = [t for _, t in run_times] or [0.0]
    scores = score_run(decisions, {t.name: t.phase for t in protocol.triggers}, truth, fields,
                       min(times), max(times), classes)
    log.info("replay event capture against %s: %s", m.truth, {
        k: (s.precision, s.recall) for k, s in scores.items()})
    return scores


def write_frames_csv(path: Path, frames: Any, in_run: set[int] | None = None) -> None:
    """One row per camera image of a replay (in acquisition order, ``image`` from 1): the sample
    time, the recorded frame shown, whether the recording had ended, the view, and (``in_run``:
    the images the run received) whether the image is in the run's data set: an image snapped
    as the run was interrupted never reaches it."""
    import csv

    from smartscope.outputs import atomic_file

    with atomic_file(Path(path)) as tmp, tmp.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["image", "sample_time_s", "movie_frame", "past_end", "stage_x_um",
                      "stage_y_um", "z_um", "objective", "channel", "pixel_size_um",
                      "in_run"])
        for f in frames:
            out.writerow([f.index, round(f.t_s, 3), f.movie_frame, int(f.past_end),
                          round(f.stage_x_um, 3), round(f.stage_y_um, 3), round(f.z_um, 3),
                          f.objective, f.channel, f.pixel_size_um,
                          "" if in_run is None else int(f.index in in_run)])


def interpolation_note(sim: Any, frames: Sequence[Any]) -> str | None:
    """What the run output says when images were taken at another objective than the recorded
    one: they are interpolated recorded pixels, not real resolution."""
    used = sorted({f.objective for f in frames} - {sim.config.objective})
    if not used:
        return None
    rec = sim.config.objective
    up = [f"{o} ({sim.magnification(o):.3g}x)" for o in used if sim.magnification(o) > 1]
    down = [f"{o} ({sim.magnification(o):.3g}x)" for o in used if sim.magnification(o) < 1]
    parts = []
    if up:
        parts.append(f"images at {', '.join(up)} are the {rec} recording interpolated: no real "
                     "resolution was gained, finer detail than the recording's is not real")
    if down:
        parts.append(f"images at {', '.join(down)} are the {rec} recording reduced (smoothed "
                     "and resampled), with background outside the recorded field")
    return "replay: " + "; ".join(parts) if parts else None


def recording_end_note(sim: Any, frames: Sequence[Any]) -> str | None:
    """How many images were taken after the recording ended (they show its last frame)."""
    past = sum(1 for f in frames if f.past_end)
    if not past:
        return None
    return (f"{past} image(s) were taken after the recording ended (sample time "
            f"{sim.duration_s:g} s) and show its last frame")
