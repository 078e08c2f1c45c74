"""Connect to the microscope a protocol names: the simulator, the Micro-Manager app (bridge), or
Micro-Manager headless (pycromanager's Python backend on pymmcore)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smartscope.decide.geometry import NO_LIMITS, Limits
from smartscope.errors import DependencyError, MicroscopeError, ProtocolError
from smartscope.protocol import (
    CentreOnCell,
    HeadlessMicroscope,
    MicroManagerMicroscope,
    Protocol,
    ReplayMicroscope,
    SimulatedMicroscope,
)

log = logging.getLogger(__name__)

#: sensor pixel pitch used to guess the pixel size of an objective the simulator does not know
_SIM_SENSOR_PITCH_UM = 6.45


@dataclass
class ScopeHandle:
    """A connected microscope: its core, the stage's own limits, and (simulated) the simulator.

    ``core`` has Micro-Manager's camelCase API (a pymmcore-plus core, or the bridge's core).
    ``truth``: the replay microscope's labelled nuclei (``RecordedTruth``), when given.
    """

    core: Any
    kind: str
    stage_limits: Limits = NO_LIMITS
    sim: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    truth: Any = None


def sim_extra_missing(what: str, e: ImportError) -> DependencyError:
    """The error for ``what`` (a microscope) when the ``[sim]`` extra is not installed."""
    return DependencyError(
        f"{what} needs pymmcore-plus and pycromanager ({e}); install the extra: pip install "
        "'smartscope[sim]'"
    )


def _import_pycromanager() -> Any:
    try:
        import pycromanager
    except ImportError as e:
        raise DependencyError(
            "pycromanager is not installed; install the acquisition extra: pip install "
            "'smartscope[mm]'"
        ) from e
    return pycromanager


@contextlib.contextmanager
def connect(protocol: Protocol, simulate: bool = False) -> Iterator[ScopeHandle]:
    """Connect to the protocol's microscope (or the simulator when ``simulate``) for a run: the
    Micro-Manager app, headless Micro-Manager, the simulator or the replay of a recording.

    With ``simulate`` a protocol naming a real microscope gets the simulator, configured with the
    protocol's objectives and channels. The connection is closed on exit.

    Raises
    ------
    MicroscopeError
        If Micro-Manager cannot be reached or fails to load its configuration.
    DependencyError
        If pycromanager (or pymmcore-plus for the simulator) is not installed.
    """
    m = protocol.microscope
    if simulate or isinstance(m, SimulatedMicroscope):
        with _simulated(protocol) as handle:
            yield handle
    elif isinstance(m, MicroManagerMicroscope):
        yield _bridge(m)
    elif isinstance(m, HeadlessMicroscope):
        with _headless(m) as handle:
            yield handle
    elif isinstance(m, ReplayMicroscope):
        from smartscope.acquire.replay import replayed

        with replayed(protocol) as handle:
            yield handle
    else:  # pragma: no cover - the schema admits no other type
        raise ProtocolError(f"microscope type {m.type!r} is not supported")


def sim_config_for(protocol: Protocol) -> Any:
    """The simulator configuration for a protocol (its objectives, channels and screening spot)."""
    from smartscope.sim import SimConfig
    from smartscope.sim.config import ChannelSpec, DemoSpec, guessed_objective, magnification

    m = protocol.microscope
    real = not isinstance(m, SimulatedMicroscope)
    defaults = SimConfig()
    objectives = dict(defaults.objectives)
    wanted = set(m.objectives)
    if real:  # a real microscope's protocol: give the simulator every objective it names
        wanted |= {protocol.screening.objective} | {
            a.objective for t in protocol.triggers for a in t.actions
            if isinstance(a, CentreOnCell) and a.objective
        }
    for name in sorted(wanted):
        spec = m.objectives.get(name)
        base = objectives.get(name)
        if base is None:
            base = guessed_objective(name, _SIM_SENSOR_PITCH_UM / magnification(name))
        update: dict[str, Any] = {}
        if spec is not None:
            update["parfocal_z_offset_um"] = spec.parfocal_z_offset_um
            if spec.pixel_size_um is not None:
                update["pixel_size_um"] = spec.pixel_size_um
        objectives[name] = base.model_copy(update=update)
    channels = dict(defaults.channels)
    if real:  # and every channel preset, showing the chromatin where the simulator has no match
        presets = {protocol.screening.channel}
        for t in protocol.triggers:
            for a in t.actions:
                if a.type == "set_channel" and (a.group or m.channel_group) == m.channel_group:
                    presets.add(a.preset)
                for extra in getattr(a, "extra_channels", ()):
                    if (extra.group or m.channel_group) == m.channel_group:
                        presets.add(extra.preset)
        for name in sorted(presets - set(channels)):
            channels[name] = ChannelSpec(chromatin_gain=1.0)
    positions = protocol.screening.position_list()
    first = positions[0] if positions else None
    if first is not None and not (
        defaults.x_limits_um[0] <= first.x_um <= defaults.x_limits_um[1]
        and defaults.y_limits_um[0] <= first.y_um <= defaults.y_limits_um[1]
    ):
        first = None  # outside the stage: the planner refuses it, naming the protocol field
    for where, name, known in (("screening.objective", protocol.screening.objective, objectives),
                               ("screening.channel", protocol.screening.channel, channels)):
        if name not in known:
            raise ProtocolError(
                f"field '{where}': value '{name}' is not a preset of the simulated microscope "
                f"({', '.join(known)}); use one of them"
            )
    s = m if isinstance(m, SimulatedMicroscope) else SimulatedMicroscope()
    return SimConfig(
        seed=s.seed, n_cells=s.n_cells, time_scale=s.time_scale, sensor_px=s.sensor_px,
        objectives=objectives,
        channels=channels,
        start_objective=protocol.screening.objective,
        start_channel=protocol.screening.channel,
        demo=DemoSpec(x_um=first.x_um if first else 0.0, y_um=first.y_um if first else 0.0,
                      n_cells=s.demo_cells) if s.demo_cells > 0 else None,
    )


@contextlib.contextmanager
def _simulated(protocol: Protocol) -> Iterator[ScopeHandle]:
    try:
        from smartscope import sim
    except ImportError as e:
        raise sim_extra_missing("the simulated microscope", e) from e
    config = sim_config_for(protocol)
    with sim.start(config) as handle:
        limits = Limits(x_um=tuple(config.x_limits_um), y_um=tuple(config.y_limits_um),
                        z_um=tuple(config.z_limits_um))
        yield ScopeHandle(core=handle.core, kind="simulated", stage_limits=limits, sim=handle,
                          info={"sim_config": config.model_dump(mode="json")})


def _bridge(m: MicroManagerMicroscope) -> ScopeHandle:
    pycromanager = _import_pycromanager()
    try:  # nothing listening: say so at once (the bridge itself would time out noisily)
        socket.create_connection(("localhost", m.port), timeout=m.timeout_s).close()
    except OSError as e:
        raise MicroscopeError(bridge_unreachable_message(m.port, e.strerror or e)) from e
    try:
        core = pycromanager.Core(port=m.port, timeout=int(m.timeout_s * 1000))
    except Exception as e:
        raise MicroscopeError(bridge_unreachable_message(m.port, e)) from e
    return ScopeHandle(core=core, kind="micromanager", info={"port": m.port})


def bridge_unreachable_message(port: int, cause: object) -> str:
    """What to tell the user when the Micro-Manager app does not answer on ``port``."""
    return (
        f"cannot reach Micro-Manager on port {port} ({cause}); start the Micro-Manager app, load "
        f"your hardware configuration, enable Tools > Options > 'Run pycro-manager server on "
        f"port {port}', then run again (or set microscope.port to the server's port)"
    )


@contextlib.contextmanager
def _headless(m: HeadlessMicroscope) -> Iterator[ScopeHandle]:
    pycromanager = _import_pycromanager()
    if not m.mm_dir.is_dir():
        raise MicroscopeError(
            f"microscope.mm_dir: Micro-Manager folder {m.mm_dir} not found; install "
            "Micro-Manager there or set mm_dir to its installation folder"
        )
    if not m.config_file.is_file():
        raise MicroscopeError(
            f"microscope.config_file: {m.config_file} not found; set it to your hardware "
            "configuration (.cfg) file"
        )
    if m.virtual_sample is not None:
        with _headless_virtual_sample(m) as handle:
            yield handle
        return
    try:
        pycromanager.start_headless(str(m.mm_dir), str(m.config_file), python_backend=True)
        core = pycromanager.Core()
    except Exception as e:
        raise MicroscopeError(
            f"Micro-Manager in {m.mm_dir} failed to start with {m.config_file} "
            f"({' '.join(str(e).split())}); check that the configuration loads in the "
            "Micro-Manager app"
        ) from e
    try:
        yield ScopeHandle(core=core, kind="headless",
                          info={"mm_dir": str(m.mm_dir), "config_file": str(m.config_file)})
    finally:
        pycromanager.stop_headless()


@contextlib.contextmanager
def _headless_virtual_sample(m: HeadlessMicroscope) -> Iterator[ScopeHandle]:
    """The protocol's configuration on a pymmcore-plus core, with the simulator's virtual-sample
    camera in place of its camera (every other device is the configuration's own)."""
    try:
        from smartscope.sim.hybrid import start_on_config
    except ImportError as e:
        raise sim_extra_missing("microscope.virtual_sample", e) from e
    vs = m.virtual_sample
    assert vs is not None
    with start_on_config(
        m.mm_dir, m.config_file, objective_group=m.objective_group,
        channel_group=m.channel_group,
        parfocal_um={k: v.parfocal_z_offset_um for k, v in m.objectives.items()},
        seed=vs.seed, n_cells=vs.n_cells, time_scale=vs.time_scale, sensor_px=vs.sensor_px,
    ) as hybrid:
        yield ScopeHandle(core=hybrid.core, kind="headless", sim=hybrid,
                          info={"mm_dir": str(m.mm_dir), "config_file": str(m.config_file),
                                "camera": "virtual sample (the simulator's camera)"})
