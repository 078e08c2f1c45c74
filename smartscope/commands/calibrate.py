"""``smartscope calibrate PROTOCOL``: measure pixel size, flips and rotation of the camera
against the stage, compare with Micro-Manager's calibration, optionally write the orientation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate(
        protocol: Annotated[Path, typer.Argument(help="Protocol file naming the microscope.")],
        objective: Annotated[str | None, typer.Option(
            "--objective", help="Objective preset to calibrate (default: the screening one)."
        )] = None,
        step_um: Annotated[float, typer.Option(
            "--step-um", min=0.1, help="Stage step in x and in y, um (keep it under a quarter "
            "of the field of view)."
        )] = 20.0,
        write: Annotated[Path | None, typer.Option(
            "--write", help="Write the protocol with the measured microscope.camera orientation "
            "to this file (may be the protocol itself; only microscope.camera changes, "
            "comments and layout stay as written)."
        )] = None,
    ) -> None:
        """Move the stage by known steps, measure the image shift by phase correlation, and
        report pixel size, flips and rotation next to Micro-Manager's calibration."""
        import shutil

        from smartscope.acquire.calibrate import measure
        from smartscope.acquire.connect import connect
        from smartscope.errors import ProtocolError
        from smartscope.outputs import atomic_file, check_file_target, made_dirs, same_path
        from smartscope.protocol import CameraOrientation, load_protocol, parse_protocol
        from smartscope.protocol.edit import set_entry
        from smartscope.yamlsafe import load_yaml

        proto = load_protocol(protocol)
        m = proto.microscope
        obj = objective or proto.screening.objective
        if write is not None:  # refused before the stage moves
            check_file_target(
                write, option="--write",
                inputs=[p for p in (getattr(m, "config_file", None), proto.model.bundle) if p],
                replaceable=lambda p: same_path(p, protocol) or _is_protocol_file(p))
            try:
                with protocol.open(encoding="utf-8", newline="") as f:  # CRLF stays CRLF
                    text = f.read()
            except UnicodeDecodeError as e:
                raise ProtocolError(f"{protocol}: not UTF-8 text ({e.reason} at byte {e.start}); "
                                    "save it as UTF-8 to use --write") from None
            # editable? checked before the stage moves, with a placeholder orientation
            set_entry(text, ("microscope", "camera"), CameraOrientation().model_dump(),
                      source=str(protocol), advice="change that, or calibrate without --write "
                      "and set microscope.camera by hand")
        with connect(proto) as scope:
            from smartscope.acquire import corecalls

            corecalls.check_preset(scope.core, m.objective_group, obj, "--objective",
                                   str(protocol))
            corecalls.call(scope.core, "setConfig", m.channel_group, proto.screening.channel)
            corecalls.call(scope.core, "setExposure", float(proto.screening.exposure_ms))
            lim = m.stage_limits
            result = measure(scope.core, objective_group=m.objective_group, objective=obj,
                             step_um=step_um, limits=(lim.x_um, lim.y_um))
        for line in result.report():
            typer.echo(line)
        if result.fit_error > 0.1 or abs(result.residual_deg) > 2.0:
            typer.echo("warning: the camera is not square to the stage (or the stage steps are "
                       "uneven); prefer Micro-Manager's affine calibration (Pixel Calibrator)",
                       err=True)
        if write is not None:
            text = set_entry(text, ("microscope", "camera"),
                             result.orientation.model_dump(), source=str(protocol))
            parse_protocol(load_yaml(text), str(write),
                           base_dir=protocol.resolve().parent)  # still valid
            target = write.resolve() if write.is_symlink() else write  # keep the link
            with made_dirs(target.parent), atomic_file(target) as tmp:
                with tmp.open("w", encoding="utf-8", newline="") as f:
                    f.write(text)
                if target.exists():  # a replaced file keeps its permissions
                    shutil.copymode(target, tmp)
            typer.echo(f"wrote microscope.camera {result.orientation.model_dump()} to {write}")


def _is_protocol_file(path: Path) -> bool:
    """An existing file ``--write`` may replace: a smartscope protocol (an earlier output)."""
    from smartscope.protocol.edit import is_protocol_text

    try:
        return path.suffix in (".yaml", ".yml") and is_protocol_text(
            path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False
