"""Every image of a run folder, read back with ndstorage (the reader the ``[mm]`` extra
installs): the screening data set and each follow-up data set."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunImage:
    """One image: its data set (relative to the run folder), axes there, metadata, pixels."""

    mode: str
    dataset: str
    axes: dict[str, Any]
    metadata: dict[str, Any]
    pixels: np.ndarray | None


def run_images(out: Path, pixels: bool = False) -> list[RunImage]:
    """The images of every data set of ``out``, in acquisition order (``ElapsedTime-ms``);
    ``mode`` is ``follow`` for those under ``followup_<n>/``."""
    from ndstorage import Dataset

    from smartscope.acquire.repair import find_datasets

    items = []
    for folder in find_datasets(out):
        rel = folder.relative_to(out).as_posix()
        mode = "follow" if rel.startswith("followup_") else "screen"
        with contextlib.redirect_stdout(io.StringIO()):
            ds = Dataset(str(folder))
        try:
            for axes in ds.get_image_coordinates_list():
                img = np.asarray(ds.read_image(**axes)) if pixels else None
                items.append(RunImage(mode, rel, dict(axes), dict(ds.read_metadata(**axes)), img))
        finally:
            ds.close()
    return sorted(items, key=lambda im: im.metadata["ElapsedTime-ms"])


def dataset_summary(folder: Path) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A data set's summary metadata and its axes (sorted values)."""
    from ndstorage import Dataset

    with contextlib.redirect_stdout(io.StringIO()):
        ds = Dataset(str(folder))
    try:
        return dict(ds.summary_metadata), {k: list(v) for k, v in ds.axes.items()}
    finally:
        ds.close()
