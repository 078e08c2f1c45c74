"""Import rules of the house: TensorFlow only in ``smartscope/train/``; pycromanager (and
mmpycorex, its core launcher) only in ``smartscope/acquire/``. Every import statement counts,
including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "smartscope"

ALLOWED = {
    "tensorflow": ("train/",),
    "keras": ("train/",),
    "pycromanager": ("acquire/",),
    "mmpycorex": ("acquire/",),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for line, top in _imports(path):
            allowed = ALLOWED.get(top)
            if allowed is not None and not rel.startswith(allowed):
                found.append(f"smartscope/{rel}:{line} imports {top} (allowed only in "
                             f"{', '.join('smartscope/' + a for a in allowed)})")
    return found


def test_heavy_and_private_dependencies_stay_in_their_package():
    assert _violations() == []


@pytest.mark.parametrize("source, top", [("import tensorflow as tf", "tensorflow"),
                                         ("from pycromanager import Acquisition", "pycromanager"),
                                         ("def f():\n    from mmpycorex import launcher\n",
                                          "mmpycorex")])
def test_the_check_sees_every_form_of_import(tmp_path, source, top):
    f = tmp_path / "m.py"
    f.write_text(source)
    assert top in [t for _, t in _imports(f)]
