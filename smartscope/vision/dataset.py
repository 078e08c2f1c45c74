"""What a crop folder says about itself: ``dataset.json`` (pixel size) and ``groups.csv`` (cells).

``dataset.json`` (optional, beside the class folders of a labelled folder, inside a flat
unlabelled folder, or beside an ``.npz`` pool)::

    {"pixel_size_um": 0.645, "description": "HeLa H2B-GFP, 10x, raw camera counts"}

declares the pixel size of the stored crops, so they can be resampled to the model's field
(``crop_um`` in the model card) with the run-time geometry. A folder without it is taken to
cover the model's field already (each crop is resized whole), unless ``--pixel-size-um`` says
otherwise.

``groups.csv`` (optional, beside the class folders): columns ``file`` (``<class>/<name>``) and
``group`` (any text). Crops of one group (the same cell followed through several frames, or a
dividing cell and its daughters) go to the same side of the train/validation split; crops without
a row are each their own group.

Numpy and pydantic only (no TensorFlow).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from pydantic import Field, ValidationError

from smartscope.errors import TrainingDataError
from smartscope.frozen import FrozenModel

log = logging.getLogger(__name__)

DATASET_JSON = "dataset.json"
GROUPS_CSV = "groups.csv"


class DatasetInfo(FrozenModel):
    """The contents of ``dataset.json``."""

    pixel_size_um: float = Field(gt=0, le=100, description="pixel size of the stored crops, um")
    description: str | None = Field(None, description="origin, microscope, contrast processing")


def read_dataset_info(folder: Path) -> DatasetInfo | None:
    """Read ``dataset.json`` of a crop folder (or of the folder holding an ``.npz`` pool).

    Returns None when there is none.

    Raises
    ------
    TrainingDataError
        If the file is not JSON or does not follow the schema (field named in the message).
    """
    folder = Path(folder)
    path = (folder.parent if folder.is_file() else folder) / DATASET_JSON
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TrainingDataError(f"{path}: not valid JSON ({e}); fix the file") from e
    try:
        return DatasetInfo.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        raise TrainingDataError(
            f"{path}: field '{loc}': {msg}; give e.g. {{\"pixel_size_um\": 0.645}}"
        ) from e


def folder_pixel_size(folder: Path, given_um: float | None) -> float | None:
    """The pixel size of a folder's crops: its ``dataset.json``, else ``given_um`` (may be None).

    Raises
    ------
    TrainingDataError
        If ``given_um`` is not positive, or the folder declares another pixel size.
    """
    if given_um is not None and not given_um > 0:
        raise TrainingDataError(f"pixel_size_um (--pixel-size-um) is {given_um}; give a "
                                "positive number")
    info = read_dataset_info(folder)
    if info is None:
        return given_um
    if given_um is not None and abs(info.pixel_size_um - given_um) > 1e-6 * given_um:
        raise TrainingDataError(
            f"{Path(folder) / DATASET_JSON}: declares pixel_size_um {info.pixel_size_um} but "
            f"pixel_size_um (--pixel-size-um) is {given_um}; drop it or fix the file"
        )
    return info.pixel_size_um


def write_dataset_info(folder: Path, pixel_size_um: float, description: str | None = None) -> Path:
    """Write ``dataset.json`` into ``folder``."""
    info = DatasetInfo(pixel_size_um=pixel_size_um, description=description)
    path = Path(folder) / DATASET_JSON
    path.write_text(info.model_dump_json(indent=2, exclude_none=True) + "\n")
    return path


def read_groups(folder: Path) -> dict[str, str]:
    """``<class>/<file name>`` -> group name from ``groups.csv`` (empty when there is none).

    Raises
    ------
    TrainingDataError
        If the file lacks the ``file`` or ``group`` column.
    """
    path = Path(folder) / GROUPS_CSV
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"file", "group"} <= set(reader.fieldnames or ()):
            raise TrainingDataError(
                f"{path}: needs the columns 'file' and 'group' (found: "
                f"{', '.join(reader.fieldnames or ()) or 'none'}); fix the header"
            )
        return {row["file"]: row["group"] for row in reader}
