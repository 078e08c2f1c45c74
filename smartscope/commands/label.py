"""``smartscope label``: label a crop pool with the keyboard on a local page (127.0.0.1 only)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from smartscope.errors import TrainingDataError

log = logging.getLogger(__name__)


def build_session(
    pool_dir: Path, classes: list[str], out: Path, model: Path | None = None,
    method: str = "margin", link_um: float | None = None,
):  # -> LabelSession (imports kept lazy for a fast --help)
    """Pool, order and labelled folder of a labelling session (what ``smartscope label`` serves).

    Order: with ``model``, the least certain crops first by that model; else, for a pool that
    carries a run's probabilities (``crops --from-run``), the least certain by those; else the
    brightest and smallest first.

    Raises
    ------
    TrainingDataError
        Bad pool, class names or uncertainty method.
    OutputError
        ``out`` overlaps the pool, is unwritable, or holds files not made by this command.
    """
    from smartscope.label.order import appearance_order, model_probabilities, uncertainty_order
    from smartscope.label.pool import LINK_UM, load_pool
    from smartscope.label.session import LabelSession, predictions_from
    from smartscope.label.store import LabelStore
    from smartscope.outputs import check_dir_target

    if method not in ("margin", "entropy"):
        raise TrainingDataError(f"--uncertainty {method!r}: use margin or entropy")
    check_dir_target(Path(out), option="--out", inputs=[Path(pool_dir)])
    pool = load_pool(pool_dir, LINK_UM if link_um is None else link_um)
    store = LabelStore(out, classes)
    ids = list(pool)
    items = [pool[c] for c in ids]
    if model is not None:
        def progress(done: int, total: int) -> None:
            log.info("classified %d / %d crops", done, total)

        names, probs = model_probabilities(items, str(model), on_progress=progress)
    elif items[0].probabilities and all(i.probabilities for i in items):
        names = tuple(items[0].probabilities)
        probs = np.array([[i.probabilities.get(c, 0.0) for c in names] for i in items])
    else:
        return LabelSession(pool, store, appearance_order(items))
    order = uncertainty_order(ids, probs, method)  # type: ignore[arg-type]
    return LabelSession(pool, store, order, predictions_from(ids, names, probs))


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

        if not 0 <= port <= 65535:
            raise TrainingDataError(f"--port {port}: give 0 to 65535")
        session = build_session(pool, classes.split(","), out, model, uncertainty, link_um)
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

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
        counts = session.store.counts()
        typer.echo("labels: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {out}")
