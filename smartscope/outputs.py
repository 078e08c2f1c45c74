"""Writing outputs safely: the rule every command that writes follows.

1. An output never lands on an input (the same file or folder, by any path or link) and a
   folder output is never inside an input folder, nor an input folder inside it.
2. An output never replaces a file the command did not make: a command may replace only what an
   earlier run of the same command wrote (the caller says how to recognise it).
3. A file is written under a temporary name next to its place and moved into place
   (``os.replace``, atomic on one file system) only when complete; a folder output (a training
   run) is built in a staging folder and swapped in at the end. A failed command leaves no partial
   file behind, and removes the folders it created that are still empty.

Every refusal is an ``OutputError`` naming the output, the path and what to change. Library
functions name the output by their argument (``out``) and take the name from their caller, so
that the command line names its flag (``--out``) instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from smartscope.errors import OutputError

__all__ = [
    "atomic_file",
    "check_dir_target",
    "check_file_target",
    "made_dirs",
    "same_path",
    "staged_dir",
]


def same_path(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same existing file or folder (links followed), or the
    same resolved path when either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def overlaps(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are the same folder or one holds the other (links resolved)."""
    return _inside(a, b) or _inside(b, a)


def _inside(child: Path, parent: Path) -> bool:
    child, parent = Path(child).resolve(), Path(parent).resolve()
    return child == parent or parent in child.parents


def _existing_ancestor(path: Path) -> Path:
    cur = Path(path).absolute().parent
    while not cur.exists() and cur != cur.parent:
        cur = cur.parent
    return cur


def _check_place(path: Path, option: str) -> None:
    """The nearest existing folder above ``path`` must be a writable folder."""
    anc = _existing_ancestor(path)
    if not anc.is_dir():
        raise OutputError(f"{option} {path}: {anc} is a file, not a folder; choose another place")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in {anc} (permission denied); "
                          "choose a writable place")


def check_file_target(
    path: Path,
    *,
    option: str,
    inputs: Iterable[Path] = (),
    replaceable: Callable[[Path], bool] | None = None,
) -> Path:
    """Check that a file output may be written at ``path``.

    Parameters
    ----------
    path : the output file
    option : the name of the output in messages: the caller's argument (``"out"``) or, from
        the command line, its flag (``"--out"``)
    inputs : files and folders the command reads; the output must not be one of them
    replaceable : says whether an existing file at ``path`` was made by this command (and may be
        replaced); None: any existing file may be replaced

    Raises
    ------
    OutputError
        If ``path`` is an input, a folder, a foreign file, or in an unwritable place.
    """
    path = Path(path)
    for src in inputs:
        if Path(src).exists() and same_path(path, src):
            raise OutputError(f"{option} {path}: this is an input of the command ({src}); "
                              "writing there would destroy it; choose another output name")
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    _check_place(path, option)
    if path.exists():
        if replaceable is not None and not replaceable(path):
            raise OutputError(f"{option} {path}: exists and was not written by this command; "
                              "choose another name or move the file away")
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise OutputError(f"{option} {path}: exists and cannot be replaced (permission "
                              "denied); choose a writable place")
        if not path.stat().st_mode & 0o222:  # marked read-only: refused for root too
            raise OutputError(f"{option} {path}: exists and is read-only; make it writable "
                              "(chmod u+w) or choose another name")
    return path


def check_dir_target(path: Path, *, option: str, inputs: Iterable[Path] = ()) -> Path:
    """Check that a folder output may be made at ``path`` (not a file, not an input folder, not
    inside one, not holding one, in a writable place). Whether an existing folder may be reused is
    the caller's rule.

    Raises
    ------
    OutputError
    """
    path = Path(path)
    for src in inputs:
        src = Path(src)
        if not src.exists():
            continue
        if overlaps(path, src):
            raise OutputError(f"{option} {path}: overlaps the input {src} (one holds the other); "
                              "choose an output folder outside the inputs")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: exists and is not a folder; choose another place")
    _check_place(path, option)
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in this folder (permission denied); "
                          "choose a writable place")
    return path


@contextlib.contextmanager
def made_dirs(path: Path) -> Iterator[Path]:
    """Create folder ``path`` (and missing parents); if the block fails, remove again those it
    created that are still empty, so a failed command leaves no empty output folder behind."""
    path = Path(path)
    created: list[Path] = []
    cur = path.absolute()
    while not cur.exists():
        created.append(cur)
        cur = cur.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot create the folder ({e.strerror}); choose a writable "
                          "place") from e
    try:
        yield path
    except BaseException:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise


def _partial_name(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.stem}.{tag}-{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers that go by the
    extension still work); when the block succeeds it is moved onto ``path``, else removed.

    Raises
    ------
    OutputError
        If the file cannot be written or moved into place.
    """
    path = Path(path)
    tmp = _partial_name(path, "partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"{path}: cannot write the file ({e.strerror or e}); choose a writable "
                          "place") from e
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def staged_dir(path: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a staging folder next to ``path``; when the block succeeds it becomes ``path``
    (an earlier folder there is replaced when ``replace``; an empty one always), else it is
    removed and ``path`` is left as it was.

    Raises
    ------
    OutputError
        If ``path`` holds something and ``replace`` is False, or the folder cannot be made.
    """
    path = Path(path)
    stage = path.with_name(f".{path.name}.partial-{os.getpid()}")
    if stage.exists():
        shutil.rmtree(stage)
    try:
        stage.mkdir(parents=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot create the folder ({e.strerror}); choose a writable "
                          "place") from e
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old: Path | None = None
    if path.exists():
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        elif replace:
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        else:
            shutil.rmtree(stage, ignore_errors=True)
            raise OutputError(f"{path}: appeared while the command ran; the result was not "
                              "written; run again with another output")
    os.replace(stage, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
