"""``smartscope label``: label a crop pool with the keyboard on a local page (127.0.0.1 only)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from smartscope.errors import TrainingDataError

CLI_NAMES = {"out": "--out", "classes": "--classes", "method": "--uncertainty"}
"""Flags of ``smartscope label`` by the argument names of ``build_session``."""


def register(app: typer.Typer) -> None:
    @app.command("label")
    def label(
        pool: Annotated[Path, typer.Argument(
            help="A crop pool: the --out folder of `smartscope crops` (index.csv + crops).")],
        classes: Annotated[str, typer.Option(
            "--classes", help="Class names, comma-separated; keys 1-9 in this order.")],
        out: Annotated[Path, typer.Option(
            "--out", help="Labelled folder: <class>/<crop>.tif + labels.csv (resumed if it "
            "exists).")],
        model: Annotated[Path | None, typer.Option(
            "--model", help="Model bundle: show the least certain crops first, grouped by "
            "predicted class.")] = None,
        uncertainty: Annotated[str, typer.Option(
            "--uncertainty", help="margin or entropy (with probabilities).")] = "margin",
        port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free).")] = 0,
        open_browser: Annotated[bool, typer.Option(
            "--open/--no-open", help="Open the page in the default browser.")] = True,
        link_um: Annotated[float | None, typer.Option(
            "--link-um", help="Largest move of a nucleus between frames, um, to show it in the "
            "previous/next frame (default 10).")] = None,
    ) -> None:
        """Serve a local labelling page; labels land in OUT as class folders + labels.csv."""
        from smartscope.label.server import LabelServer
        from smartscope.label.session import build_session

        if not 0 <= port <= 65535:
            raise TrainingDataError(f"--port {port}: give 0 to 65535")
        session = build_session(pool, classes.split(","), out, model, uncertainty, link_um,
                                options=CLI_NAMES)
        try:
            server = LabelServer(session, port)
        except OSError as e:
            raise TrainingDataError(f"--port {port}: cannot listen on 127.0.0.1 ({e})") from e
        state = session.state()
        typer.echo(f"{state['pool']} crops, {state['labelled']} labelled already, ordered by "
                   f"{state['ordered_by']}")
        typer.echo(f"labelling page (this computer only): {server.url}")
        typer.echo("Ctrl-C stops; run the same command again to resume.")
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt  # SIGTERM ends the session like Ctrl-C

        # SIGINT too: a shell that starts the command in the background without job control
        # (scripts, CI) hands it SIGINT ignored, and Python then never raises KeyboardInterrupt
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.server_close()
        counts = session.store.counts()
        typer.echo("labels: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {out}")
