"""Checks of a folder movie made when it is opened: every frame file readable and of one size,
and one series of frames (not two channels side by side)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from smartscope.errors import RecordingError


def check_same_frames(files: list[Path], first: np.ndarray) -> None:
    """Check, from the TIFF headers only, that every file of a folder movie is readable and
    one frame of the first file's size: a bad file is named now, not in the middle of a run."""
    import tifffile

    for p in files[1:]:
        try:
            with tifffile.TiffFile(p) as tif:
                shape = tuple(n for n in tif.series[0].shape if n != 1)
        except Exception as e:  # tifffile raises many types on a damaged or foreign file
            raise RecordingError(f"{p}: not a readable TIFF image ({e}); remove it from the "
                                 "folder or narrow frame_pattern (--frame-pattern)") from e
        if shape != first.shape:
            raise RecordingError(
                f"{p}: a frame of {' x '.join(map(str, shape))} px, but {files[0].name} is "
                f"{first.shape[0]} x {first.shape[1]} px; give frames of one size (remove it "
                "or narrow frame_pattern)"
            )


def check_one_series(folder: Path, files: list[Path], pattern: str) -> None:
    """Refuse a folder whose file names differ by more than their numbers (two channels)."""
    groups: dict[str, list[str]] = {}
    for p in files:
        groups.setdefault(re.sub(r"\d+", "#", p.name), []).append(p.name)
    if len(groups) < 2:
        return
    names = [p.name for p in files]
    examples = [g[0] for g in groups.values()][:3]
    hints = [h for h in (_pattern_for(g, names) for g in list(groups.values())[:3]) if h]
    raise RecordingError(
        f"{folder}: the files matching '{pattern}' are {len(groups)} series (e.g. "
        f"{', '.join(examples)}); choose one with frame_pattern (--frame-pattern)"
        + (f", e.g. {' or '.join(repr(h) for h in hints)}" if hints else "")
    )


def _pattern_for(group: list[str], names: list[str]) -> str | None:
    """A glob that selects exactly the files of one series among ``names`` (None if none of
    the simple candidates does)."""
    from fnmatch import fnmatchcase

    name = group[0]
    candidates = (f"*{re.split(r'(?=[_-])', name)[-1]}",        # *_h2b.tif
                  re.sub(r"^.*?(\d+)(\D*)$", r"*[0-9]\2", name),  # *[0-9].tif
                  re.sub(r"\d+", "*", name))                     # P*_T*.tif
    for c in candidates:
        if sorted(n for n in names if fnmatchcase(n, c)) == sorted(group):
            return c
    return None
