"""``smartscope validate PROTOCOL``: check a protocol file without touching a microscope."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

MIN_PRECISION = 0.8
"""A trigger whose phase has a lower validation precision at its threshold gets a warning."""


def threshold_warnings(proto: Any, card: Any, min_precision: float = MIN_PRECISION) -> list[str]:
    """One line per trigger phase whose ``min_confidence`` gives the model's validation
    precision below ``min_precision`` (figures read off the card's threshold table)."""
    table = card.thresholds
    if table is None:
        return []
    lines = []
    for i, trig in enumerate(proto.triggers):
        for phase in trig.phase:
            if phase not in table.classes:
                continue
            p, r, at = table.at(phase, trig.min_confidence)
            if p is None or p < min_precision:
                shown = "nothing predicted" if p is None else f"precision {p:.2f}"
                better = [g for g in table.grid if g > trig.min_confidence
                          and (q := table.at(phase, g)[0]) is not None and q >= min_precision]
                hint = (f"raise it to {better[0]:g} (see the card's thresholds)" if better
                        else "no threshold reaches it on the card: expect false triggers")
                lines.append(
                    f"field 'triggers.{i}.min_confidence': {trig.min_confidence:g} for "
                    f"'{phase}' gives {shown}, recall {r} on the model's {table.set} "
                    f"(threshold {at:g}); below {min_precision:g}: {hint}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        protocols: Annotated[list[Path], typer.Argument(
            help="Protocol file(s) (YAML); each is checked, an error in one does not stop the "
            "others.", metavar="PROTOCOL...")],
    ) -> None:
        """Check a protocol: schema, values, the model bundle (loaded as `run` loads it), and
        trigger phases against the model's classes."""
        from smartscope.errors import SmartscopeError

        if len(protocols) == 1:
            _validate_one(protocols[0])  # its error goes to the CLI's one-line handler
            return
        failed = 0
        for protocol in protocols:
            try:
                _validate_one(protocol)
            except SmartscopeError as e:
                typer.echo(f"error: {e}", err=True)
                failed += 1
        if failed:
            typer.echo(f"{failed} of {len(protocols)} protocols have errors", err=True)
            raise typer.Exit(code=2)


def _validate_one(protocol: Path) -> None:
    from smartscope.classify import Classifier
    from smartscope.errors import ModelBundleError, ProtocolError
    from smartscope.protocol import check_phases, load_protocol

    proto = load_protocol(protocol)
    try:
        card = Classifier(proto.model.bundle, num_threads=1).card
    except ModelBundleError as e:
        raise ProtocolError(f"{protocol}: field 'model.bundle': {e}") from e
    check_phases(proto, card.classes, str(protocol))
    for line in threshold_warnings(proto, card):
        typer.echo(f"warning: {protocol}: {line}", err=True)
    replay = ""
    if proto.microscope.type == "replay":  # the movie and labels are inputs too
        from smartscope.acquire.replay import check_replay

        replay = f" ({check_replay(proto, str(protocol))})"
    sc = proto.screening
    positions = sc.position_list()
    n_pos = len(positions) if positions else 1
    end = f"{sc.n_timepoints} time points" if sc.n_timepoints else f"{sc.duration_s} s"
    typer.echo(
        f"ok: {protocol}: {proto.microscope.type} microscope{replay}, screening {n_pos} "
        f"position(s) at {sc.objective}/{sc.channel} every {sc.interval_s} s for {end}; model "
        f"'{card.name}' ({', '.join(card.classes)}); triggers: "
        + (", ".join(f"{t.name} ({'/'.join(t.phase)} -> "
                     f"{', '.join(a.type for a in t.program())})" for t in proto.triggers)
           or "none")
    )
