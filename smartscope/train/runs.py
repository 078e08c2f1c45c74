"""The run folder: what ``train`` and ``transfer`` write, and what ``export`` reads back.

::

    RUN_DIR/
      bundle/model.tflite, bundle/model_card.json   int8 classifier + card (smartscope.classify)
      discriminator.keras                            best checkpoint, both heads (for transfer)
      generator.keras                                SGAN runs only
      run.json                                       classes, data summary and hashes, settings
      export_data.npz                                representative, validation and test crops
      metrics.json, confusion_matrix.png, training_curves.png, samples.png
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from smartscope.classify.card import CARD_FILE, MODEL_FILE
from smartscope.errors import ModelBundleError, OutputError
from smartscope.outputs import check_dir_target, staged_dir
from smartscope.train.augment import RandomIntensityScale  # noqa: F401  (registers the layer)
from smartscope.train.models import SalimansActivation  # noqa: F401  (registers the layer)
from smartscope.train.reports import write_json

log = logging.getLogger(__name__)

BUNDLE_DIR = "bundle"
CHECKPOINT = "discriminator.keras"
GENERATOR = "generator.keras"
INFO_JSON = "run.json"
EXPORT_DATA = "export_data.npz"
METRICS_JSON = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "training_curves.png"
SAMPLES_PNG = "samples.png"


RUN_FILES = frozenset({BUNDLE_DIR, CHECKPOINT, GENERATOR, INFO_JSON, EXPORT_DATA, METRICS_JSON,
                       CONFUSION_PNG, CURVES_PNG, SAMPLES_PNG})
"""Everything a run folder may hold: ``--overwrite`` replaces a folder holding nothing else."""
BUNDLE_FILES = frozenset({MODEL_FILE, CARD_FILE})
"""Everything a run's ``bundle/`` may hold: ``export`` and ``--overwrite`` replace it whole."""


def check_bundle_replaceable(run_dir: Path, option: str) -> None:
    """Refuse to replace ``RUN_DIR/bundle/`` when it holds files a run did not write there (a
    user's notes or evaluation): ``export`` and ``--overwrite`` replace the folder as a whole.

    Raises
    ------
    OutputError
        If ``bundle/`` holds anything but ``model.tflite`` and ``model_card.json``.
    """
    bundle = Path(run_dir) / BUNDLE_DIR
    if not bundle.is_dir():
        return
    foreign = sorted(p.name for p in bundle.iterdir() if p.name not in BUNDLE_FILES)
    if foreign:
        raise OutputError(
            f"{option} {bundle}: holds files that are not the run's bundle "
            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}), which replacing "
            "the bundle would delete; move them out of the folder first"
        )


def prepare_out(out: Path, overwrite: bool, inputs: Iterable[Path | None] = (),
                option: str = "out", overwrite_option: str = "overwrite=True") -> Path:
    """Check that ``out`` may become a run folder; refuse to overwrite an earlier run unless
    asked, and never write into a folder of other files or into (or around) an input folder.
    ``option`` and ``overwrite_option`` name ``out`` and ``overwrite`` in messages (the command
    line passes its flags).

    Raises
    ------
    OutputError
        If ``out`` is a file, overlaps an input, holds files not written by a training run, or
        already holds a run and ``overwrite`` is False.
    """
    out = check_dir_target(Path(out), option=option, inputs=[p for p in inputs if p])
    if not out.is_dir() or not any(out.iterdir()):
        return out
    if not (out / INFO_JSON).is_file():
        raise OutputError(
            f"{option} {out}: holds files that are not a training run; give a new or empty folder"
        )
    foreign = sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES)
    if foreign:
        raise OutputError(
            f"{option} {out}: holds a training run and other files ({', '.join(foreign[:3])}); "
            "give a new or empty folder"
        )
    if not overwrite:
        raise OutputError(
            f"{option} {out}: already holds a training run; choose another {option} or pass "
            f"{overwrite_option}"
        )
    check_bundle_replaceable(out, option)
    return out


STAGED = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$")
"""The staging folder a run is built in (``.NAME.partial-PID``) until it becomes ``NAME``."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def killed_with_checkpoint(stage: Path) -> bool:
    """Whether a staging folder was left by a killed process after its training ended: it
    holds the run's ``run.json`` and checkpoint, and ``export`` can finish it."""
    m = STAGED.match(stage.name)
    return bool(m and stage.is_dir() and not pid_alive(int(m["pid"]))
                and (stage / INFO_JSON).is_file() and (stage / CHECKPOINT).is_file())


def _warn_killed_stages(out: Path) -> None:
    for stage in sorted(out.parent.glob(f".{out.name}.partial-*")):
        if killed_with_checkpoint(stage):
            log.warning("%s: left by a run into %s that was killed after its training; it holds "
                        "the trained checkpoint: to keep it, rename it and run `smartscope "
                        "export` on it, else delete it", stage, out.name)


@contextlib.contextmanager
def staged_out(out: Path, overwrite: bool, inputs: Iterable[Path | None] = (),
               option: str = "out", overwrite_option: str = "overwrite=True") -> Iterator[Path]:
    """A run folder built in a staging folder next to ``out`` and swapped in when complete
    (an earlier run replaced as a whole with ``overwrite``); nothing of it remains if the
    command fails. See :func:`prepare_out` for what is refused."""
    out = prepare_out(out, overwrite, inputs, option, overwrite_option)
    _warn_killed_stages(out)
    with staged_dir(out, replace=overwrite) as stage:
        yield stage


def save_info(run_dir: Path, info: dict) -> Path:
    return write_json(Path(run_dir) / INFO_JSON, info)


def load_info(run_dir: Path, require: Iterable[str] = ("classes",)) -> dict:
    """Read ``run.json``; ``require``: fields the caller needs (``classes`` must be a list of
    names). Raises ModelBundleError when the folder is not a run folder or the file is not a
    run's description (edited by hand, truncated, another tool's)."""
    path = Path(run_dir) / INFO_JSON
    if not path.is_file():
        raise ModelBundleError(
            f"{run_dir}: not a training run folder ({INFO_JSON} missing); give the --out folder "
            "of `smartscope train` or `smartscope transfer`"
        )
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelBundleError(f"{path}: not valid JSON ({e}); rerun training") from e
    if not isinstance(info, dict):
        raise ModelBundleError(f"{path}: holds a {type(info).__name__}, not a training run's "
                               "description; restore it or rerun training")
    for name in require:
        if name not in info:
            raise ModelBundleError(f"{path}: field '{name}' missing; restore the file or rerun "
                                   "training")
    classes = info.get("classes", [])
    if not (isinstance(classes, list) and all(isinstance(c, str) and c for c in classes)):
        raise ModelBundleError(f"{path}: field 'classes': {classes!r} is not a list of class "
                               "names; restore the file or rerun training")
    return info


def load_base_info(folder: Path) -> dict:
    """What transfer needs to know about a base model: ``run.json`` of a run folder, or the
    model card of a bundle folder that carries its checkpoint (a shipped bundle).

    Raises
    ------
    ModelBundleError
        If the folder holds neither.
    """
    folder = Path(folder)
    if (folder / INFO_JSON).is_file():
        return load_info(folder)
    from smartscope.classify.card import CARD_FILE, ModelCard

    if not (folder / CARD_FILE).is_file():
        raise ModelBundleError(
            f"{folder}: neither {INFO_JSON} nor {CARD_FILE} found; give a run folder of "
            "`smartscope train` or a bundle that carries its checkpoint"
        )
    card = ModelCard.load(folder)
    return {"name": card.name, "classes": list(card.classes), "method": card.method,
            "crop_um": card.input.crop_um, "training": card.training}


def save_checkpoint(run_dir: Path, discriminator: keras.Model,
                    generator: keras.Model | None = None) -> Path:
    path = Path(run_dir) / CHECKPOINT
    discriminator.save(path)
    if generator is not None:
        generator.save(Path(run_dir) / GENERATOR)
    return path


def load_checkpoint(run_dir: Path) -> keras.Model:
    """Load the discriminator checkpoint with ``safe_mode=True`` (no arbitrary code).

    Raises
    ------
    ModelBundleError
        If the checkpoint is missing or cannot be loaded.
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise ModelBundleError(
            f"{path}: Keras checkpoint not found; give a run folder written by `smartscope train`"
        )
    if not zipfile.is_zipfile(path):
        raise ModelBundleError(
            f"{path}: not a complete .keras file ({path.stat().st_size} bytes; truncated or "
            "corrupt, its zip directory is missing); restore it or rerun training"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # keras raises many types for corrupt or foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelBundleError(
            f"{path}: cannot load the checkpoint ({type(e).__name__}: {first})"
        ) from e


def save_export_data(run_dir: Path, representative: np.ndarray, val_x: np.ndarray,
                     val_y: np.ndarray, test_x: np.ndarray | None = None,
                     test_y: np.ndarray | None = None, test_set: np.ndarray | None = None
                     ) -> Path:
    """Store the crops ``export`` needs (float16, compressed), so a run folder is self-contained."""
    # Any: numpy's stub types every ``**kwds`` of savez_compressed against ``allow_pickle`` too
    arrays: dict[str, Any] = {"representative": representative.astype(np.float16),
              "val_x": val_x.astype(np.float16), "val_y": val_y.astype(np.int64)}
    if test_x is not None and test_y is not None and len(test_x):
        arrays.update(test_x=test_x.astype(np.float16), test_y=test_y.astype(np.int64))
        if test_set is not None:
            arrays["test_set"] = np.asarray(test_set, dtype=np.int64)
    path = Path(run_dir) / EXPORT_DATA
    np.savez_compressed(path, **arrays)
    return path


def load_export_data(run_dir: Path) -> dict[str, np.ndarray]:
    path = Path(run_dir) / EXPORT_DATA
    if not path.is_file():
        raise ModelBundleError(f"{path}: export data missing; rerun `smartscope train`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: (npz[k].astype(np.float32) if npz[k].dtype == np.float16 else npz[k])
                    for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ModelBundleError(f"{path}: unreadable ({type(e).__name__}: truncated or corrupt); "
                               "restore it or rerun `smartscope train`") from e


def find_base_run(base: Path) -> Path:
    """The run folder holding the Keras checkpoint for ``base`` (a run folder or its bundle).

    Raises
    ------
    ModelBundleError
        If neither ``base`` nor the folder above it holds a checkpoint (an int8 bundle alone
        cannot be fine-tuned).
    """
    base = Path(base)
    for folder in (base, base.parent):
        if (folder / CHECKPOINT).is_file():
            return folder
    raise ModelBundleError(
        f"{base}: no {CHECKPOINT} here or in the folder above; give the run folder of "
        "`smartscope train` (an int8 bundle alone cannot be fine-tuned)"
    )


def load_metrics(run_dir: Path) -> dict:
    """Read ``metrics.json`` of a run folder."""
    return json.loads((Path(run_dir) / METRICS_JSON).read_text())
