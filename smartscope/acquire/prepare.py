"""Preparing a run on a connected microscope: presets checked, positions completed, the frame
classifier built, the hook's planner and recorder made (``prepare_hook``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from smartscope.acquire import corecalls
from smartscope.acquire.calibration import ObjectiveCalibration, calibrations
from smartscope.acquire.records import Recorder
from smartscope.classify.cells import Cell, FrameClassifier
from smartscope.classify.frame import Predictor
from smartscope.decide import Limits, Planner, PlanSettings
from smartscope.errors import MicroscopeError, ProtocolError
from smartscope.protocol import (
    CentreOnCell,
    Detection,
    ModelSpec,
    ObjectiveSpec,
    Position,
    Protocol,
    Screening,
    SimulatedMicroscope,
    Trigger,
)

log = logging.getLogger(__name__)


def frame_classifier(classifier: Predictor, diameter_um: float) -> FrameClassifier:
    """Detection + classification of one frame with a loaded ``Classifier``."""
    from smartscope.classify import classify_frame

    def run(image: np.ndarray, pixel_size_um: float) -> Sequence[Cell]:
        return classify_frame(image, pixel_size_um, classifier, diameter_um=diameter_um).cells

    return run


def check_presets(protocol: Protocol, core: Any, source: str) -> None:
    """Every objective and channel preset the protocol uses must exist on the microscope; on a
    real one, so must every key of ``microscope.objectives`` (its offsets would go unused)."""
    m = protocol.microscope
    corecalls.check_preset(core, m.objective_group, protocol.screening.objective,
                           "screening.objective", source)
    corecalls.check_preset(core, m.channel_group, protocol.screening.channel,
                           "screening.channel", source)
    if m.type in ("headless", "micromanager"):  # a misspelt key would be ignored silently
        for name in m.objectives:
            corecalls.check_preset(core, m.objective_group, name,
                                   f"microscope.objectives.{name}", source)
    for i, t in enumerate(protocol.triggers):
        for j, a in enumerate(t.actions):
            where = f"triggers[{i}].actions[{j}]"
            if a.type == "centre_on_cell" and a.objective:
                corecalls.check_preset(core, m.objective_group, a.objective,
                                       f"{where}.objective", source)
            if a.type == "set_channel":
                corecalls.check_preset(core, a.group or m.channel_group, a.preset,
                                       f"{where}.preset", source)
            for k, extra in enumerate(getattr(a, "extra_channels", ())):
                corecalls.check_preset(core, extra.group or m.channel_group, extra.preset,
                                       f"{where}.extra_channels[{k}].preset", source)


def check_stages(core: Any) -> None:
    """Refuse a microscope without an XY stage or a focus device (screening positions,
    centring and z-stacks move them; without them every event fails with 'No device with
    label ""').

    Raises
    ------
    MicroscopeError
        Naming the Micro-Manager property to set.
    """
    for what, name, prop in (("an XY stage", "getXYStageDevice", "XYStage"),
                             ("a focus device", "getFocusDevice", "Focus")):
        if not str(corecalls.call(core, name)):
            raise MicroscopeError(
                f"the microscope has no {what[what.index(' ') + 1:]} set (Core-{prop} is "
                f"empty): smartscope moves {what} to the screening positions and follow-ups; "
                f"set Core-{prop} in Micro-Manager's configuration (e.g. its System > "
                "Startup preset)")


def resolve_positions(screening: Screening, core: Any) -> tuple[Position, ...]:
    """Screening positions with x, y and z filled in from the stage where not given."""
    positions = screening.position_list()
    if positions is None:
        x, y = float(corecalls.call(core, "getXPosition")), float(
            corecalls.call(core, "getYPosition"))
        positions = (Position(name="here", x_um=x, y_um=y),)
    z_now: float | None = None
    out = []
    for p in positions:
        if p.z_um is None:
            if z_now is None:
                z_now = float(corecalls.call(core, "getPosition"))
            p = p.model_copy(update={"z_um": z_now})
        out.append(p)
    return tuple(out)


def objectives_used(protocol: Protocol) -> list[str]:
    """The objective presets a protocol images with: screening first, then the follow-ups'."""
    out = [protocol.screening.objective]
    for t in protocol.triggers:
        for a in t.actions:
            if isinstance(a, CentreOnCell) and a.objective and a.objective not in out:
                out.append(a.objective)
    return out


def check_one_camera(core: Any) -> None:
    """Refuse a camera that delivers several images per snap (Micro-Manager's Multi Camera).

    pycromanager's engine then adds a ``camera`` axis the hook's frames do not have, and the
    closed loop would wait for ever on images it cannot match.

    Raises
    ------
    MicroscopeError
        Naming the camera and what to change.
    """
    n = int(corecalls.call(core, "getNumberOfCameraChannels"))
    if n > 1:
        camera = corecalls.call(core, "getCameraDevice")
        raise MicroscopeError(
            f"the camera '{camera}' delivers {n} images per frame (Multi Camera); smartscope "
            "drives one camera: set Core-Camera to a single camera in Micro-Manager (e.g. in "
            "the System > Startup preset) and run again"
        )


def check_trigger_field(protocol: Protocol, core: Any, screening_pixel_size_um: float | None,
                        source: str) -> None:
    """Refuse trigger filters no nucleus of a screening frame can pass: an ``edge_margin_um``
    of half the field or more, a ``min_area_um2`` of the whole field or more. Unchecked when
    the screening pixel size is unknown.

    Raises
    ------
    ProtocolError
        Naming the trigger's field, its value, the field of view and what to use instead.
    """
    ps = screening_pixel_size_um
    if not ps:
        return
    w_um = int(corecalls.call(core, "getImageWidth")) * ps
    h_um = int(corecalls.call(core, "getImageHeight")) * ps
    view = (f"the {w_um:g} x {h_um:g} um field at {protocol.screening.objective} "
            f"({ps:g} um/px)")
    for i, t in enumerate(protocol.triggers):
        half = min(w_um, h_um) / 2
        if t.edge_margin_um >= half:
            raise ProtocolError(
                f"{source}: field 'triggers[{i}].edge_margin_um': value {t.edge_margin_um:g} "
                f"leaves no place for a nucleus in {view}, so '{t.name}' could never fire; use "
                f"a margin well under {half:g} um (about a nucleus radius)")
        if t.min_area_um2 is not None and t.min_area_um2 >= w_um * h_um:
            raise ProtocolError(
                f"{source}: field 'triggers[{i}].min_area_um2': value {t.min_area_um2:g} is "
                f"larger than {view}, so '{t.name}' could never fire; use a nucleus area "
                "(about 50-500 um^2 for HeLa)")


def check_pixel_sizes(protocol: Protocol, cals: Mapping[str, ObjectiveCalibration],
                      source: str) -> None:
    """Refuse an objective the protocol images with that has no pixel size: none in the
    protocol and no Micro-Manager pixel-size calibration matching its preset (the core then
    reports 0 um/px, and every image at it would fail to be classified, or be centred on
    nothing, during the run).

    Raises
    ------
    MicroscopeError
        Naming the objective and the two ways to give it a pixel size.
    """
    given = protocol.pixel_sizes_um()
    for objective, cal in cals.items():
        if objective not in given and cal.pixel_size_um is None:
            raise MicroscopeError(
                f"{source}: objective '{objective}' has no pixel size: no pixel-size "
                "calibration of Micro-Manager matches its preset and the protocol gives none; "
                "calibrate it in Micro-Manager (Devices > Pixel Size Calibration) or set "
                f"microscope.objectives.{objective}.pixel_size_um")


@dataclass(frozen=True)
class HookParts:
    """What ``SmartHook.from_protocol`` builds from a protocol on a connected core."""

    planner: Planner
    classify: FrameClassifier
    recorder: Recorder
    calibration: dict[str, ObjectiveCalibration]


def prepare_hook(protocol: Protocol, core: Any, *, classifier: Any, classify: FrameClassifier |
                 None, out_dir: str | Path | None, stage_limits: Limits,
                 source: str) -> HookParts:
    """Check the protocol against the model and the microscope, complete the screening
    positions and build the hook's planner, frame classifier and recorder (see
    ``SmartHook.from_protocol``, which raises what this raises)."""
    from smartscope.protocol import check_phases

    if classifier is None and classify is None:
        from smartscope.classify import Classifier

        classifier = Classifier(protocol.model.bundle, num_threads=protocol.model.num_threads)
    classes: tuple[str, ...] = tuple(classifier.classes) if classifier is not None else ()
    if classifier is not None:
        check_phases(protocol, classes, source)
    check_presets(protocol, core, source)
    check_one_camera(core)
    check_stages(core)
    m = protocol.microscope
    cals = calibrations(core, m.objective_group, objectives_used(protocol))
    check_pixel_sizes(protocol, cals, source)
    affines = {o: c.affine for o, c in cals.items() if c.affine is not None}
    screen = protocol.screening.objective
    check_trigger_field(protocol, core, protocol.pixel_sizes_um().get(screen) or getattr(
        cals.get(screen), "pixel_size_um", None), source)
    positions = resolve_positions(protocol.screening, core)
    settings = PlanSettings.from_protocol(protocol, positions, stage_limits, affines)
    if classify is None:
        classify = frame_classifier(classifier, protocol.detection.diameter_um)
    recorder = Recorder.in_folder(out_dir, classes) if out_dir is not None else Recorder()
    return HookParts(Planner(settings, source), classify, recorder, cals)


def protocol_from_objects(*, screening: Screening, triggers: Sequence[Trigger], classifier: Any,
                          detection: Detection, objectives: Mapping[str, ObjectiveSpec] | None,
                          objective_group: str, channel_group: str,
                          on_error: Literal["continue", "stop"]) -> Protocol:
    """The protocol ``SmartHook.from_objects`` builds from its parts (a simulated microscope
    with these config groups and objectives, the classifier's bundle as its model)."""
    return Protocol(
        version=1,
        microscope=SimulatedMicroscope(objective_group=objective_group,
                                       channel_group=channel_group,
                                       objectives=dict(objectives or {})),
        screening=screening,
        model=ModelSpec(bundle=Path(getattr(classifier, "path", "."))),
        detection=detection,
        triggers=tuple(triggers),
        on_error=on_error,
    )


def screening_in_place(protocol: Protocol, core: Any) -> None:
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
