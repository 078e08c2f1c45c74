"""Command-line entry point: ``smartscope <command>``.

Each command lives in ``smartscope/commands/<name>.py`` and registers itself on the app with a
``register(app)`` function; those modules import heavy packages (TensorFlow, pycromanager) only
inside the command bodies, so ``smartscope --help`` stays fast.

Errors the user can fix (``SmartscopeError``) are printed on one line, exit code 2, no traceback
unless ``--debug`` is given.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from smartscope.errors import SmartscopeError

#: command modules, in help order
COMMAND_MODULES = (
    "run", "check", "calibrate", "report", "validate", "simulate", "classify", "crops", "label",
    "train", "refit", "repair",
)

app = typer.Typer(
    name="smartscope",
    help="Smart microscopy: classify nuclei in every frame and rewrite the acquisition on the fly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show info logs."),
) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"smartscope.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"smartscope.commands.{name}":
                continue  # command not built into this install
            raise
        module.register(app)


_register_commands()


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Click's usage-error and abort classes: typer >= 0.20 raises those of the click it
    bundles (``typer._click``), older typer those of the installed click; both are caught."""
    import click

    usage: set[type] = {click.exceptions.ClickException}
    usage.update(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    return tuple(usage), (click.exceptions.Abort, typer.Abort)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by the console script and by tests)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        result = app(args=args, standalone_mode=False)
    except SmartscopeError as e:
        if debug:
            raise
        typer.echo(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        usage, aborts = _click_exception_types()
        if isinstance(e, usage):
            if debug:
                raise
            e.show()  # type: ignore[attr-defined]
            return int(e.exit_code)  # type: ignore[attr-defined]
        if isinstance(e, aborts):
            typer.echo("aborted", err=True)
            return 130
        raise
    # in non-standalone mode click returns the code of a typer.Exit instead of raising it
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
