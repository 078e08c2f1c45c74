"""``smartscope run PROTOCOL``: run a smart acquisition (``--simulate`` for a dry run)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from smartscope.errors import SmartscopeError


class RunInterrupted(SmartscopeError):
    """Ctrl-C or SIGTERM ended the run (cleanly); exit code 130 like a shell interrupt."""

    exit_code = 130


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        protocol: Annotated[Path, typer.Argument(help="Protocol file (YAML).")],
        simulate: Annotated[bool, typer.Option(
            "--simulate", help="Use the simulated microscope, whatever the protocol names."
        )] = False,
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Run folder (default: the protocol's output section)."
        )] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
        progress_every_s: Annotated[float, typer.Option(
            "--progress-every", help="Seconds between progress lines."
        )] = 2.0,
        replay: Annotated[Path | None, typer.Option(
            "--replay", help="Replay a recorded movie (TIFF stack T x Y x X, NDTiff data set or "
            "folder of frames) instead of the protocol's microscope; the rest of the protocol "
            "is kept."
        )] = None,
        pixel_size_um: Annotated[float | None, typer.Option(
            "--pixel-size-um", help="With --replay: the recording's pixel size, um/px."
        )] = None,
        frame_interval_s: Annotated[float | None, typer.Option(
            "--frame-interval-s", help="With --replay: time between recorded frames, s."
        )] = None,
        recorded_objective: Annotated[str | None, typer.Option(
            "--recorded-objective", help="With --replay: the objective preset the movie was "
            "recorded with (default: the screening objective)."
        )] = None,
        frame_pattern: Annotated[str | None, typer.Option(
            "--frame-pattern", help="With --replay of a folder: which files are frames (glob), "
            "e.g. '*_h2b.tif'."
        )] = None,
        truth: Annotated[Path | None, typer.Option(
            "--truth", help="With --replay: labelled nuclei CSV (frame, y, x, phase) to score "
            "trigger precision and recall."
        )] = None,
    ) -> None:
        """Screen, classify every nucleus, and act when a target phase appears."""
        from smartscope.acquire import Run, output_dir
        from smartscope.protocol import load_protocol

        proto = load_protocol(protocol)
        if replay is not None:
            if simulate:
                raise SmartscopeError("--simulate and --replay both choose the microscope; "
                                      "give one of them")
            from smartscope.acquire.replay import with_replay

            proto = with_replay(proto, replay, pixel_size_um=pixel_size_um,
                                frame_interval_s=frame_interval_s, truth=truth,
                                objective=recorded_objective, frame_pattern=frame_pattern)
        elif any(v is not None for v in (pixel_size_um, frame_interval_s, truth,
                                         recorded_objective, frame_pattern)):
            raise SmartscopeError("--pixel-size-um, --frame-interval-s, --recorded-objective, "
                                  "--frame-pattern and --truth describe a recording: give them "
                                  "with --replay MOVIE")
        folder = out if out is not None else output_dir(proto, dt.datetime.now(), protocol.stem)
        state = {"last": 0.0, "triggers": 0}

        def progress(p) -> None:  # noqa: ANN001 - acquire.Progress
            now = time.monotonic()
            if quiet:
                return
            if now - state["last"] < progress_every_s and p.triggers_fired == state["triggers"]:
                return
            state["last"], state["triggers"] = now, p.triggers_fired
            typer.echo(
                f"[{p.elapsed_s:7.1f} s] frames {p.frames} (screening {p.screening_frames}, "
                f"follow-up {p.followup_frames}) | triggers fired {p.triggers_fired} | "
                f"errors {p.errors} | {p.mode} | hook {p.last_latency_ms:.0f} ms"
                + (f" | last: {p.last_decision}" if p.last_decision else ""),
                err=True,
            )

        if not quiet:
            kind = (" (simulated)" if simulate else f" (replay of {replay})" if replay else "")
            typer.echo(f"run: {protocol} -> {folder}{kind}", err=True)
        runner = Run(proto, folder, simulate=simulate, source=str(protocol), progress=progress,
                     out_option="--out")
        try:
            summary = runner.execute()
        except KeyboardInterrupt:  # before the acquisition began (or while it was set up)
            raise RunInterrupted(f"the run was interrupted ({runner.summary.frames} frames); "
                                 f"what was acquired is in {folder}") from None
        lat = summary.latency_ms
        typer.echo(
            f"{summary.status}: {summary.frames} frames ({summary.screening_frames} screening, "
            f"{summary.followup_frames} follow-up), {summary.triggers_fired} trigger(s) fired, "
            f"{summary.errors} error(s) in {summary.duration_s:.1f} s; hook latency median "
            f"{lat.get('median', 0):.0f} ms, max {lat.get('max', 0):.0f} ms; outputs in {folder}"
            + (f"; report: {runner.report}" if runner.report is not None else "")
        )
        for note in summary.notes:
            typer.echo(f"note: {note}")
        for line in summary.event_capture_lines:
            typer.echo(line)
        if summary.status == "interrupted":
            raise RunInterrupted(f"the run was interrupted; what was acquired is in {folder}")

