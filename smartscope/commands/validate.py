"""``smartscope validate PROTOCOL``: check a protocol file without touching a microscope."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        protocol: Annotated[Path, typer.Argument(help="Protocol file (YAML).")],
    ) -> None:
        """Check a protocol: schema, values, the model bundle (loaded as `run` loads it), and
        trigger phases against the model's classes."""
        from smartscope.classify import Classifier
        from smartscope.errors import ModelBundleError, ProtocolError
        from smartscope.protocol import check_phases, load_protocol

        proto = load_protocol(protocol)
        try:
            card = Classifier(proto.model.bundle, num_threads=1).card
        except ModelBundleError as e:
            raise ProtocolError(f"{protocol}: field 'model.bundle': {e}") from e
        check_phases(proto, card.classes, str(protocol))
        sc = proto.screening
        positions = sc.position_list()
        n_pos = len(positions) if positions else 1
        end = f"{sc.n_timepoints} time points" if sc.n_timepoints else f"{sc.duration_s} s"
        typer.echo(
            f"ok: {protocol}: {proto.microscope.type} microscope, screening {n_pos} position(s) "
            f"at {sc.objective}/{sc.channel} every {sc.interval_s} s for {end}; model "
            f"'{card.name}' ({', '.join(card.classes)}); triggers: "
            + (", ".join(f"{t.name} ({'/'.join(t.phase)} -> "
                         f"{', '.join(a.type for a in t.program())})" for t in proto.triggers)
               or "none")
        )
