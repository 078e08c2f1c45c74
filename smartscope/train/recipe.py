"""A training run's recipe: what ``train`` records in ``run.json`` so that the run can be made
again (``smartscope refit`` trains it anew on all of its labels), and reading it back.

Runs of an older ``smartscope train`` record no recipe section; their recipe is read from the
card fields they do record (folder names, settings, the optimiser line), and their folders are
then found under a data root the user names.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from smartscope.errors import TrainingDataError
from smartscope.train.pipeline import TrainRequest, as_paths, folder_label
from smartscope.train.sgan import SGAN, LoopConfig

log = logging.getLogger(__name__)

RECIPE = "recipe"
"""The ``run.json`` section holding the recipe."""


def recipe_of(req: TrainRequest, folder_sha256: dict[str, str]) -> dict:
    """The recipe of a training request, as ``run.json`` records it (folders as absolute
    paths; ``folder_sha256``: per labelled folder label, the hash of its crops)."""
    def paths(value: Path | tuple[Path, ...] | None) -> list[str]:
        return [str(Path(p).resolve()) for p in as_paths(value)]

    return {
        "labelled": paths(req.labelled), "test": paths(req.test),
        "unlabelled": paths(req.unlabelled),
        "classes": None if req.classes is None else list(req.classes),
        "labels_per_class": req.labels_per_class, "unlabelled_count": req.unlabelled_count,
        "seed": req.seed, "method": req.method, "size": req.size,
        "val_fraction": req.val_fraction, "class_weighted": req.class_weighted,
        "balanced": req.balanced, "crop_um": req.crop_um, "pixel_size_um": req.pixel_size_um,
        "calibrate": req.calibrate, "init": None if req.init is None else str(req.init),
        "loop": asdict(req.loop), "folder_sha256": dict(folder_sha256),
    }


@dataclass(frozen=True)
class Recipe:
    """A held-out run's recipe read back: the request that trains it, and the folder labels
    (``hela_phases/train``) its hashes are recorded under."""

    request: TrainRequest
    labelled_names: tuple[str, ...]
    test_names: tuple[str, ...]
    folder_sha256: dict[str, str]


def read_recipe(info: dict, run_dir: Path, data_root: Path | None = None) -> Recipe:
    """The recipe recorded in a run's ``run.json`` (``info``).

    ``data_root``: look the recorded folders up as ``DATA_ROOT/<parent>/<name>`` first (data
    moved, or an older run that recorded folder names only), then at their recorded paths.

    Raises
    ------
    TrainingDataError
        If the run records too little to train it again, or a folder is not found.
    """
    where = f"{Path(run_dir) / 'run.json'}"
    if data_root is not None and not Path(data_root).is_dir():
        raise TrainingDataError(f"--data-root {data_root}: "
                                f"{'not a folder' if Path(data_root).exists() else 'not found'}; "
                                "give the folder that holds the run's data folders")
    rec = info.get(RECIPE)
    if isinstance(rec, dict):
        return _from_recipe(rec, where, data_root)
    return _from_summary(info, where, data_root)


def _folders(paths: list[str], names: list[str], what: str, where: str,
             data_root: Path | None) -> tuple[Path, ...]:
    found = []
    for i, name in enumerate(names):
        recorded = Path(paths[i]) if i < len(paths) else None
        if data_root is not None and ((Path(data_root) / name).is_dir() or recorded is None):
            path = Path(data_root) / name
        elif recorded is not None:
            path = recorded
            if data_root is not None:
                log.warning("%s folder %s is not under --data-root %s; using the path %s "
                            "records, %s", what, name, data_root, where, path)
        else:
            raise TrainingDataError(
                f"{where}: records the {what} folders by name only ({', '.join(names)}; an older "
                "`smartscope train`); give --data-root, the folder that holds them")
        if not path.is_dir():
            hint = ("give --data-root, the folder that now holds it" if data_root is None
                    else "check --data-root")
            raise TrainingDataError(f"{what} folder {path} of {where}: not found (moved?); {hint}")
        found.append(path)
    return tuple(found)


def _loop(values: dict, where: str) -> LoopConfig:
    known = {f.name for f in fields(LoopConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainingDataError(f"{where}: recipe field loop.{unknown[0]} is not one this "
                                "smartscope knows; refit with the version that trained the run")
    return LoopConfig(**values)


def _names(rec: dict, key: str, where: str, nullable: bool = False) -> None:
    value = rec.get(key)
    if value is None and nullable:
        return
    if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)
            and (value or key != "labelled")):
        raise TrainingDataError(
            f"{where}: recipe field {key}: {value!r} is not a list of "
            f"{'class names' if key == 'classes' else 'folder paths'}"
            f"{' (or null)' if nullable else ''}; restore the file or train the run again")


def _from_recipe(rec: dict, where: str, data_root: Path | None) -> Recipe:
    _names(rec, "labelled", where)
    for key in ("test", "unlabelled", "classes"):
        _names(rec, key, where, nullable=True)
    if not isinstance(rec.get("init"), str | None):
        raise TrainingDataError(f"{where}: recipe field init: {rec['init']!r} is not a path (or "
                                "null); restore the file or train the run again")
    try:
        labelled_paths, test_paths = list(rec["labelled"]), list(rec.get("test") or [])
        names = [folder_label(Path(p)) for p in labelled_paths]
        tests = [folder_label(Path(p)) for p in test_paths]
        unl = list(rec.get("unlabelled") or [])
        req = TrainRequest(
            labelled=_folders(labelled_paths, names, "labelled", where, data_root),
            test=_folders(test_paths, tests, "test", where, data_root) or None,
            unlabelled=_folders(unl, [folder_label(Path(p)) for p in unl], "unlabelled", where,
                                data_root) or None,
            out=Path(), classes=None if rec["classes"] is None else tuple(rec["classes"]),
            labels_per_class=rec["labels_per_class"], unlabelled_count=rec["unlabelled_count"],
            seed=rec["seed"], method=rec["method"], size=rec["size"],
            val_fraction=rec["val_fraction"], class_weighted=rec["class_weighted"],
            balanced=rec["balanced"], crop_um=rec["crop_um"],
            pixel_size_um=rec["pixel_size_um"], calibrate=rec["calibrate"],
            init=None if rec["init"] is None else Path(rec["init"]),
            loop=_loop(dict(rec["loop"]), where),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise TrainingDataError(f"{where}: its recipe section is incomplete or edited ({e}); "
                                "restore the file or train the run again") from e
    check_values(req, f"{where}: recipe field")
    return Recipe(req, tuple(names), tuple(tests), dict(rec.get("folder_sha256") or {}))


_OPTIMIZER = re.compile(r"Adam lr ([0-9.eE+-]+) beta_1 ([0-9.eE+-]+)"
                        r"(?:, cosine decay to [0-9.]+ x over (\d+) epochs)?")


def _from_summary(info: dict, where: str, data_root: Path | None) -> Recipe:
    """An older run: its recipe from the training summary it records."""
    t = info.get("training") or {}
    try:
        if info["method"] == SGAN:
            raise TrainingDataError(f"{where}: an SGAN run of an older `smartscope train` records "
                                    "no unlabelled folder; train it again to refit it")
        m = _OPTIMIZER.fullmatch(str(t["optimizer"]))
        if m is None:
            raise TrainingDataError(f"{where}: training.optimizer {t['optimizer']!r} is not one "
                                    "`smartscope train` writes; restore the file")
        names = [n.strip() for n in str(t["labelled_folder"]).split(",") if n.strip()]
        tests = [n.strip() for n in str(t.get("test_folder") or "").split(",") if n.strip()]
        aug = t.get("augmentation_settings") or {}
        decay = m.group(3) is not None
        loop = LoopConfig(
            learning_rate=float(m.group(1)), beta_1=float(m.group(2)),
            max_epochs=int(m.group(3)) if decay else int(t["epochs"]),
            steps_per_epoch=int(t["steps_per_epoch"]), augment=bool(t["augmentation"]),
            max_gamma=float(t.get("max_gamma", 1.0)), lr_decay=decay,
            label_smoothing=float(t.get("label_smoothing", 0.0)),
            dropout=float(t.get("dropout", 0.25)),
            ema_half_life_epochs=float(t.get("weight_ema_half_life_epochs", 0.0)),
            **{k: aug[k] for k in ("rotation_deg", "translation", "zoom", "flips",
                                   "max_downsample", "noise_sd") if k in aug},
        )
        req = TrainRequest(
            labelled=_folders([], names, "labelled", where, data_root),
            test=_folders([], tests, "test", where, data_root) or None,
            out=Path(), classes=None,  # the run's folders give its classes; checked later
            labels_per_class=t.get("labels_per_class_requested"), seed=int(info["seed"]),
            method=info["method"], size=str(t["model_size"]["name"]),
            class_weighted=bool(t.get("class_weighted", False)),
            balanced=bool(t.get("balanced_sampling", False)),
            crop_um=float(info.get("crop_um", t["crop_um"])),
            calibrate=bool(info.get("calibrate", True)), loop=loop,
            init=None if t.get("init") is None else Path(t["init"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise TrainingDataError(f"{where}: does not record the run's recipe (field {e} missing "
                                "or edited); restore the file or train the run again") from e
    check_values(req, f"{where}: setting, read from its training section,")
    return Recipe(req, tuple(names), tuple(tests), {})


SEED_MAX = 2**32 - 1
"""The largest seed numpy's and Keras' generators take."""

_INT, _NUM, _FLAG = "a whole number", "a number", "true or false"
_RULES: dict[str, tuple[str, float | None, float | None, bool]] = {
    # field: (kind, lowest, highest, may be null); the values `smartscope train` can write
    "seed": (_INT, 0, SEED_MAX, False), "labels_per_class": (_INT, 1, None, True),
    "unlabelled_count": (_INT, 1, None, True), "val_fraction": (_NUM, 0, 1, False),
    "class_weighted": (_FLAG, None, None, False), "balanced": (_FLAG, None, None, False),
    "crop_um": (_NUM, 0, None, False), "pixel_size_um": (_NUM, 0, None, True),
    "calibrate": (_FLAG, None, None, False),
    "loop.learning_rate": (_NUM, 0, None, False), "loop.beta_1": (_NUM, 0, 1, False),
    "loop.max_epochs": (_INT, 1, None, False), "loop.patience": (_INT, 0, None, False),
    "loop.min_epochs": (_INT, 0, None, False), "loop.steps_per_epoch": (_INT, 1, None, True),
    "loop.max_minutes": (_NUM, 0, None, True), "loop.augment": (_FLAG, None, None, False),
    "loop.batch_cap": (_INT, 2, None, False), "loop.max_gamma": (_NUM, 1, None, False),
    "loop.rotation_deg": (_NUM, 0, None, False), "loop.translation": (_NUM, 0, 1, False),
    "loop.zoom": (_NUM, 0, 1, False), "loop.flips": (_FLAG, None, None, True),
    "loop.max_downsample": (_NUM, 1, None, False), "loop.noise_sd": (_NUM, 0, None, False),
    "loop.label_smoothing": (_NUM, 0, 1, False), "loop.dropout": (_NUM, 0, 1, False),
    "loop.lr_decay": (_FLAG, None, None, False),
    "loop.ema_half_life_epochs": (_NUM, 0, None, False),
    "loop.keep_last": (_FLAG, None, None, False),
    "loop.stop_after_epochs": (_INT, 1, None, True),
}


def check_value(value: Any, name: str, kind: str, lowest: float | None = None,
                highest: float | None = None, nullable: bool = False, where: str = "") -> None:
    """Refuse a value read back from a file that is not of ``kind`` (:data:`_INT`, :data:`_NUM`
    or :data:`_FLAG`; no ``true`` for a number, no ``"yes"`` for a flag, no NaN) or lies outside
    ``lowest`` .. ``highest``.

    Raises
    ------
    TrainingDataError
        Naming ``where``, the field and its value.
    """
    if value is None and nullable:
        return
    if kind == _FLAG:
        ok = isinstance(value, bool)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        ok = False
    elif kind == _INT:
        ok = isinstance(value, int)
    else:
        ok = math.isfinite(value)
    if ok and kind != _FLAG:
        ok = (lowest is None or value >= lowest) and (highest is None or value <= highest)
    if not ok:
        span = ("" if kind == _FLAG else f" from {lowest:.12g}" if highest is None
                else f" from {lowest:.12g} to {highest:.12g}")
        raise TrainingDataError(
            f"{where} {name}: {value!r} is not {kind}{span}{' (or null)' if nullable else ''}; "
            "restore the file or train the run again")


def check_values(req: TrainRequest, where: str) -> None:
    """Refuse a recipe whose settings ``smartscope train`` cannot have written (an edited
    ``run.json``): wrong types, NaN, values out of range (see :func:`check_value`)."""
    for name, (kind, lowest, highest, nullable) in _RULES.items():
        obj: Any = req.loop if name.startswith("loop.") else req
        check_value(getattr(obj, name.split(".")[-1]), name, kind, lowest, highest, nullable,
                    where)
    if req.loop.monitor not in ("accuracy", "balanced_accuracy"):
        raise TrainingDataError(f"{where} loop.monitor: {req.loop.monitor!r} is not 'accuracy' "
                                "or 'balanced_accuracy'; restore the file or train the run again")
