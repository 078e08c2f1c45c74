"""Every Micro-Manager core call smartscope makes exists under the name pycromanager gives it.

The Java bridge (pyjavaz) and the Python backend (mmpycorex) expose MMCore methods in snake_case,
converted in two steps (``getXPosition`` -> ``get_x_position``); a one-step conversion gives
``get_xposition``, which the bridge does not have, and ``smartscope run`` on the Micro-Manager
app failed at start with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pymmcore
import pytest
from mmpycorex.launcher import _create_pymmcore_instance
from pyjavaz.bridge import _camel_case_2_snake_case

from smartscope.acquire import corecalls

PACKAGE = Path(__file__).resolve().parents[2] / "smartscope"
#: classes whose methods go through ``corecalls.call`` (the core, and a preset's settings)
MM_CLASSES = (pymmcore.CMMCore, pymmcore.Configuration, pymmcore.PropertySetting)


def _core_calls() -> list[tuple[str, int, str]]:
    """(file, line, camelCase name) of every ``call(obj, "name", ...)`` in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sim" in path.relative_to(PACKAGE).parts:
            continue  # the simulator calls its own pymmcore-plus core directly
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else None
            arg = node.args[1]
            if name == "call" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((str(path.relative_to(PACKAGE)), node.lineno, arg.value))
    return found


CALLS = _core_calls()


def test_the_scan_finds_the_calls():
    names = {n for _, _, n in CALLS}
    assert {"getXPosition", "getYPosition", "getPixelSizeUm", "getConfigData"} <= names


@pytest.mark.parametrize(("where", "line", "name"), CALLS,
                         ids=[f"{f}:{ln}:{n}" for f, ln, n in CALLS])
def test_core_call_uses_pycromanagers_name(where, line, name):
    owners = [c for c in MM_CLASSES if callable(getattr(c, name, None))]
    assert owners, f"{where}:{line}: {name} is not a Micro-Manager core method"
    assert corecalls.snake(name) == _camel_case_2_snake_case(name)
    if pymmcore.CMMCore in owners:  # the Python backend's core has the same snake_case name
        snake_core = _create_pymmcore_instance()
        assert callable(getattr(snake_core, corecalls.snake(name), None)), name


def test_call_falls_back_to_the_bridge_name():
    class BridgeLike:
        def get_x_position(self) -> float:
            return 12.5

    assert corecalls.call(BridgeLike(), "getXPosition") == 12.5
