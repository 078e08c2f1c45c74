"""``smartscope check PROTOCOL``: preflight of a protocol on the real (or demo) microscope."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartscope.errors import SmartscopeError


class PreflightFailed(SmartscopeError):
    """The preflight found something that would stop the run."""


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check(
        protocol: Annotated[Path, typer.Argument(help="Protocol file (YAML).")],
    ) -> None:
        """Check a protocol on the microscope: presets, calibrations, devices, a test snap,
        timing. Exit code 2 when something would stop the run."""
        from smartscope.acquire.connect import connect
        from smartscope.acquire.preflight import BLOCKER, format_table, preflight
        from smartscope.classify import Classifier
        from smartscope.protocol import load_protocol

        proto = load_protocol(protocol)
        classifier = Classifier(proto.model.bundle, num_threads=proto.model.num_threads)
        with connect(proto) as scope:
            rows = preflight(proto, scope.core, classifier, source=str(protocol))
        typer.echo(format_table(rows))
        blockers = [r.item for r in rows if r.status == BLOCKER]
        if blockers:
            raise PreflightFailed(
                f"{protocol}: {len(blockers)} blocker(s): {', '.join(blockers)}; fix them "
                "before `smartscope run`"
            )
        typer.echo(f"{protocol}: ready to run on the {scope.kind} microscope")
