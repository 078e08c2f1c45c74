"""``smartscope simulate --snap out.tif``: snap one frame on the simulated microscope."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SOFTWARE = "smartscope simulate"
"""Written in the TIFF's and PNG's ``Software`` field: marks a file as this command's own, so a
later ``simulate`` may replace it (and nothing else)."""
TRUTH_HEADER = "id,parent_id,phase,x_um,y_um,col_px,row_px"


def _head(path: Path, n: int = 4096) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def _our_tiff(path: Path) -> bool:
    """A TIFF this command wrote: its Software tag, or (written before the tag) the description
    holding exactly the snap's metadata."""
    import json

    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages.first.tags
            software = tags.get("Software")
            if software is not None and software.value == SOFTWARE:
                return True
            desc = tags.get("ImageDescription")
            meta = json.loads(desc.value) if desc is not None else None
    except Exception:  # not a TIFF, or not one of ours: never replaced
        return False
    return isinstance(meta, dict) and set(meta) == {"shape", "objective", "channel", "x_um",
                                                    "y_um", "time_s", "pixel_size_um"}


def _our_png(path: Path) -> bool:
    head = _head(path)
    return head.startswith(b"\x89PNG") and SOFTWARE.encode() in head


def _our_truth(path: Path) -> bool:
    return _head(path, len(TRUTH_HEADER) + 2).decode(errors="replace").splitlines()[:1] == [
        TRUTH_HEADER]


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        snap: Annotated[Path, typer.Option("--snap", help="Write the frame here (16-bit TIFF).")],
        png: Annotated[
            Path | None, typer.Option("--png", help="Also write a contrast-stretched PNG.")
        ] = None,
        truth: Annotated[
            Path | None,
            typer.Option("--truth", help="Also write the cells in view (CSV: id, phase, px)."),
        ] = None,
        objective: Annotated[str, typer.Option(help="Objective preset: 10x, 20x or 60x.")] = "10x",
        channel: Annotated[
            str, typer.Option(help="Channel preset: DAPI, FITC, Rhodamine, Cy5, Brightfield.")
        ] = "FITC",
        x_um: Annotated[float, typer.Option("--x-um", help="Stage X, um.")] = 0.0,
        y_um: Annotated[float, typer.Option("--y-um", help="Stage Y, um.")] = 0.0,
        z_um: Annotated[
            float | None,
            typer.Option("--z-um", help="Focus Z, um (default: in focus for the objective)."),
        ] = None,
        exposure_ms: Annotated[float, typer.Option("--exposure-ms", help="Exposure, ms.")] = 100.0,
        sensor_px: Annotated[int, typer.Option("--sensor-px", help="Sensor side, px.")] = 1024,
        seed: Annotated[int, typer.Option(help="Sample seed.")] = 0,
        time_s: Annotated[float, typer.Option("--time-s", help="Sim time of the frame, s.")] = 0.0,
        demo: Annotated[
            bool, typer.Option("--demo", help="Put cells entering mitosis near (x, y).")
        ] = False,
    ) -> None:
        """Snap one frame of the simulated HeLa H2B-GFP slide and write it to a file."""
        import numpy as np
        import tifffile
        from pydantic import ValidationError

        from smartscope.errors import MicroscopeError, OutputError
        from smartscope.outputs import atomic_file, check_file_target, made_dirs, same_path
        from smartscope.sim import DemoSpec, ManualClock, SimConfig, start

        try:
            config = SimConfig(
                seed=seed, sensor_px=sensor_px, exposure_ms=exposure_ms, start_time_s=time_s,
                real_exposure_time=False,
                demo=DemoSpec(x_um=x_um, y_um=y_um) if demo else None,
            )
        except ValidationError as e:
            raise MicroscopeError(f"invalid simulator option: {e.errors()[0]['msg']}") from e
        for name, value, allowed in (("--objective", objective, config.objectives),
                                     ("--channel", channel, config.channels)):
            if value not in allowed:
                raise MicroscopeError(f"{name} {value!r}: choose one of {', '.join(allowed)}")
        targets = [(o, v, ours) for o, v, ours in (("--snap", snap, _our_tiff),
                                                    ("--png", png, _our_png),
                                                    ("--truth", truth, _our_truth))
                   if v is not None]
        for i, (option, target, ours) in enumerate(targets):
            check_file_target(target, option=option, replaceable=ours)
            for other, earlier, _ in targets[:i]:
                if same_path(target, earlier):
                    raise OutputError(f"{option} {target}: the same file as {other}; give "
                                      "each output its own name")
        with start(config, clock=ManualClock(time_s)) as scope:
            core = scope.core
            core.setConfig("Objective", objective)
            core.setConfig("Channel", channel)
            core.setXYPosition(x_um, y_um)
            core.setPosition(z_um if z_um is not None else config.focal_plane_um(objective))
            core.snapImage()
            img = np.asarray(core.getImage())
            cells = scope.truth(in_view=True)
            pixel_size = core.getPixelSizeUm()
        with made_dirs(snap.parent), atomic_file(snap) as tmp:
            tifffile.imwrite(tmp, img, resolution=(1e4 / pixel_size, 1e4 / pixel_size),
                             resolutionunit="CENTIMETER", software=SOFTWARE,
                             metadata={"objective": objective, "channel": channel, "x_um": x_um,
                                       "y_um": y_um, "time_s": time_s,
                                       "pixel_size_um": pixel_size})
        msg = (f"wrote {snap}: {img.shape[1]}x{img.shape[0]} uint16, {objective} "
               f"({pixel_size} um/px), {channel}, {exposure_ms} ms, stage ({x_um}, {y_um}) um, "
               f"t={time_s} s, {len(cells)} cells in view")
        if png is not None:
            import matplotlib.pyplot as plt

            lo, hi = np.percentile(img, [0.5, 99.8])
            with made_dirs(png.parent), atomic_file(png) as tmp:
                plt.imsave(tmp, img, cmap="gray", vmin=lo, vmax=max(hi, lo + 1), format="png",
                           metadata={"Software": SOFTWARE})
            msg += f"; preview {png}"
        if truth is not None:
            rows = [TRUTH_HEADER]
            rows += [f"{c.id},{'' if c.parent_id is None else c.parent_id},{c.phase},"
                     f"{c.x_um:.2f},{c.y_um:.2f},{c.col_px:.1f},{c.row_px:.1f}" for c in cells]
            with made_dirs(truth.parent), atomic_file(truth) as tmp:
                tmp.write_text("\n".join(rows) + "\n")
            msg += f"; truth {truth}"
        typer.echo(msg)
