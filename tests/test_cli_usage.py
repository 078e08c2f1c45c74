"""Command-line usage mistakes (unknown option, missing argument, value out of range) end in
click's one-line usage message and exit code 2, never a traceback, whichever click typer uses."""

from __future__ import annotations

import pytest

from smartscope.cli import main


@pytest.mark.parametrize("argv, says", [
    (["run", "--no-such-option", "p.yaml"], "--no-such-option"),
    (["run"], "protocol"),
    (["calibrate", "p.yaml", "--step-um", "0"], "--step-um"),
    (["calibrate", "p.yaml", "--step-um", "-5"], "--step-um"),
])
def test_usage_error_is_one_message_and_exit_2(argv, says, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
