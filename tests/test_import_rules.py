"""Import rules of the house: TensorFlow only in ``smartscope/train/``; pycromanager (and
mmpycorex, its core launcher) only in ``smartscope/acquire/``; the command line
(``smartscope.cli``, ``smartscope.commands``) is imported by nothing but itself, so the library
(and the scripts, benchmarks and examples built on it) never depends on typer or CLI flags. Every
import statement counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "smartscope"
CLI_USERS = ("cli.py", "__main__.py", "commands/")
"""Files of the package that may import the command line."""

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


def _modules(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement of ``path`` names in full (``a.b`` of ``from a.b import
    c``, and ``a.b.c`` too, since ``c`` may be a module)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _cli_imports(files: list[Path], root: Path = REPO) -> list[str]:
    found = []
    for path in files:
        for line, module in _modules(path):
            if module == "smartscope.commands" or module.startswith("smartscope.commands.") \
                    or module == "smartscope.cli":
                found.append(f"{path.relative_to(root).as_posix()}:{line} imports {module} "
                             "(the command line; move what it needs into the library)")
    return found


def test_nothing_outside_the_command_line_imports_it():
    files = [p for p in sorted(PACKAGE.rglob("*.py"))
             if not p.relative_to(PACKAGE).as_posix().startswith(CLI_USERS)]
    for folder in ("scripts", "benchmarks", "examples"):
        files += sorted((REPO / folder).rglob("*.py"))
    assert len(files) > 50
    assert _cli_imports(files) == []


@pytest.mark.parametrize("source", ["from smartscope.commands.crops import run_crops",
                                    "from smartscope.commands import crops",
                                    "def f():\n    import smartscope.commands.label\n",
                                    "from smartscope import commands",
                                    "from smartscope.cli import main"])
def test_the_cli_check_sees_every_form_of_import(tmp_path, source):
    f = tmp_path / "m.py"
    f.write_text(source)
    assert _cli_imports([f], tmp_path) != []
    f.write_text("from smartscope.vision.io import read_frames\nimport smartscope.label\n")
    assert _cli_imports([f], tmp_path) == []


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
