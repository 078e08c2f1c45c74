"""The bad-input catalogue: every case goes through the CLI and must end with a non-zero exit code
and ONE line on stderr that names the file / field / value and says what to do (no traceback
unless ``--debug``).

Cases are grouped by what is bad: protocol files (checked by ``validate`` and, for what needs the
microscope or the model, by ``run --simulate``), model bundles (``run``), images (``crops``) and
training folders (``train`` / ``evaluate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile

from .conftest import (
    base_protocol,
    copy_bundle,
    write_protocol,
)


@dataclass(frozen=True)
class Case:
    """One bad input: ``make(tmp_path, bundle) -> argv``; ``expect``: substrings of the line."""

    id: str
    make: Callable[[Path, Path], list[str]]
    expect: tuple[str, ...]


# --- protocol files ---------------------------------------------------------------------------


def _validate(change: Callable[[dict], object] | str) -> Callable[[Path, Path], list[str]]:
    """``smartscope validate`` on a protocol broken by ``change`` (or given as raw text)."""

    def make(tmp: Path, bundle: Path) -> list[str]:
        copy_bundle(bundle, tmp / "bundle")  # a real bundle: validate loads the model
        if isinstance(change, str):
            return ["validate", write_protocol(tmp, change)]
        data = base_protocol("bundle")
        change(data)
        return ["validate", write_protocol(tmp, data)]

    return make


def _run(change: Callable[[dict], object]) -> Callable[[Path, Path], list[str]]:
    """``smartscope run --simulate`` with the real tiny bundle, on a protocol broken by
    ``change`` (checks that need the model or the microscope)."""

    def make(tmp: Path, bundle: Path) -> list[str]:
        data = base_protocol(bundle)
        change(data)
        return ["run", write_protocol(tmp, data), "--simulate", "--quiet", "--out", tmp / "run"]

    return make


def _set(path: str, value: object) -> Callable[[dict], None]:
    """Set a dotted path (list items as integers) in the protocol dict."""

    def change(data: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = data
        for p in parents:
            node = node[p]
        node[last] = value

    return change


def _del(path: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        node = data
        for p in parents:
            node = node[p]
        del node[last]

    return change


def _duplicate_trigger(data: dict) -> None:
    data["triggers"].append(dict(data["triggers"][0]))


def _rename_key(path: str, new: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[new] = node.pop(last)

    return change


PROTOCOL_CASES = [
    Case("yaml-syntax-error", _validate("version: 1\nscreening:\n  objective: [10x\n"),
         ("protocol.yaml", "YAML syntax error", "line", "fix the indentation")),
    Case("yaml-not-a-mapping", _validate("- version\n- 1\n"),
         ("protocol.yaml", "top level must be a mapping")),
    Case("empty-file", _validate(""), ("protocol.yaml", "empty", "start from")),
    Case("typo-field", _validate(_rename_key("screening.exposure_ms", "exposure_msec")),
         ("'screening.exposure_msec'", "did you mean 'exposure_ms'")),
    Case("typo-top-level", _validate(_rename_key("triggers", "trigers")),
         ("'trigers'", "did you mean 'triggers'")),
    Case("wrong-type", _validate(_set("screening.exposure_ms", "fast")),
         ("screening.exposure_ms", "'fast'", "change it")),
    Case("negative-interval", _validate(_set("screening.interval_s", -1)),
         ("screening.interval_s", "-1", "greater than or equal to 0")),
    Case("zero-exposure", _validate(_set("screening.exposure_ms", 0)),
         ("screening.exposure_ms", "0", "greater than 0")),
    Case("negative-action-exposure",
         _validate(_set("triggers.0.actions.1", {"type": "set_channel", "preset": "FITC",
                                                 "exposure_ms": -5})),
         ("triggers[0].actions[1].exposure_ms", "-5")),
    Case("unknown-action-type", _validate(_set("triggers.0.actions.1", {"type": "zoom"})),
         ("triggers[0].actions[1]", "'zoom'", "centre_on_cell")),
    Case("stop-not-last",
         _validate(_set("triggers.0.actions", [{"type": "stop"}, {"type": "burst",
                                                                  "n_frames": 2}])),
         ("triggers[0]", "move it to the end")),
    Case("phase-not-in-model", _validate(_set("triggers.0.phase", "telophase")),
         ("triggers[0].phase", "'telophase'", "use one of the model's classes")),
    Case("missing-model", _validate(_set("model.bundle", "no_such_bundle")),
         ("model.bundle", "no_such_bundle", "bundle folder not found")),
    Case("missing-model-field", _validate(_del("model")), ("'model'", "required", "add it")),
    Case("duplicate-trigger-names", _validate(_duplicate_trigger),
         ("triggers", "'zoom' is used twice", "unique name")),
    Case("empty-positions", _validate(_set("screening.positions", [])),
         ("screening.positions", "[]")),
    Case("no-end-of-screening", _validate(_del("screening.n_timepoints")),
         ("screening", "n_timepoints or duration_s")),
    Case("wrong-version", _validate(_set("version", 2)), ("'version'", "2")),
    Case("reversed-stage-limits",
         _validate(_set("microscope.stage_limits", {"x_um": [100, -100]})),
         ("microscope.stage_limits", "low < high")),
    Case("min-frames-over-max",
         _validate(_set("triggers.0.actions.1", {"type": "change_interval", "interval_s": 1,
                                                 "min_frames": 9, "max_frames": 3})),
         ("triggers[0].actions[1]", "min_frames (9)", "max_frames (3)")),
    Case("unknown-objective-preset", _run(_set("screening.objective", "100x")),
         ("screening.objective", "'100x'", "use one of them")),
    Case("unknown-action-objective", _run(_set("triggers.0.actions.0.objective", "40x")),
         ("triggers[0].actions[0].objective", "'40x'", "use one of them")),
    Case("unknown-channel-preset",
         _run(_set("triggers.0.actions.1", {"type": "set_channel", "preset": "GFP-long"})),
         ("triggers[0].actions[1].preset", "'GFP-long'", "use one of them")),
    Case("phase-not-in-model-at-run", _run(_set("triggers.0.phase", "prometaphase")),
         ("triggers[0].phase", "'prometaphase'", "interphase, metaphase, anaphase")),
    Case("position-outside-stage-limits",
         _run(_set("screening.positions", [{"x_um": 5e5, "y_um": 0}])),
         ("screening.positions[0]", "500000.00", "outside the safe range",
          "move the position inside the stage limits")),
]


def test_protocol_file_not_found(cli, tmp_path):
    res = cli("validate", tmp_path / "nope.yaml")
    assert res.code != 0 and res.error_lines == [f"error: {tmp_path / 'nope.yaml'}: protocol "
                                                 "file not found; check the path"]


# --- model bundles ----------------------------------------------------------------------------


def _bundle(prepare: Callable[[Path], object]) -> Callable[[Path, Path], list[str]]:
    """``run --simulate`` with a copy of the tiny bundle broken by ``prepare(folder)``."""

    def make(tmp: Path, bundle: Path) -> list[str]:
        broken = copy_bundle(bundle, tmp / "broken")
        prepare(broken)
        proto = write_protocol(tmp, base_protocol(broken))
        return ["run", proto, "--simulate", "--quiet", "--out", tmp / "run"]

    return make


def _card(update: dict) -> Callable[[Path], None]:
    def prepare(folder: Path) -> None:
        copy_bundle(folder, folder, update)

    return prepare


def _truncate(folder: Path) -> None:
    data = (folder / "model.tflite").read_bytes()
    (folder / "model.tflite").write_bytes(data[: len(data) // 2])


BUNDLE_CASES = [
    Case("bundle-missing-tflite", _bundle(lambda f: (f / "model.tflite").unlink()),
         ("model.tflite", "model file not found", "must hold")),
    Case("bundle-missing-card", _bundle(lambda f: (f / "model_card.json").unlink()),
         ("model_card.json", "model card not found")),
    Case("bundle-corrupt-tflite",
         _bundle(lambda f: (f / "model.tflite").write_bytes(b"\x00garbage" * 100)),
         ("model.tflite", "not a readable TFLite model", "re-export")),
    Case("bundle-truncated-tflite", _bundle(_truncate),
         ("model.tflite", "not a readable TFLite model", "re-export")),
    Case("bundle-card-not-json",
         _bundle(lambda f: (f / "model_card.json").write_text("{classes: [a")),
         ("model_card.json", "not valid JSON", "re-export")),
    Case("bundle-card-fewer-classes",
         _bundle(_card({"classes": ["interphase", "metaphase"]})),
         ("model.tflite", "3 outputs", "2 classes", "fix 'classes'")),
    Case("bundle-card-more-classes",
         _bundle(_card({"classes": ["interphase", "metaphase", "anaphase", "telophase"]})),
         ("3 outputs", "4 classes", "fix 'classes'")),
    Case("bundle-card-input-size", _bundle(_card({"input": {"size_px": 32}})),
         ("model.tflite", "(64, 64, 1)", "(32, 32, 1)", "fix 'input'")),
    Case("bundle-card-normalisation", _bundle(_card({"input": {"normalisation": "zscore"}})),
         ("'zscore'", "retrain or re-export")),
]


# --- images -----------------------------------------------------------------------------------


def _image(name: str, write: Callable[[Path], object]) -> Callable[[Path, Path], list[str]]:
    """``smartscope crops`` on one bad image file."""

    def make(tmp: Path, bundle: Path) -> list[str]:
        path = tmp / name
        write(path)
        return ["crops", path, "--pixel-size-um", "0.645", "--out", tmp / "crops"]

    return make


def _png_rgb(path: Path) -> None:
    from skimage.io import imsave

    rgb = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    imsave(path, rgb, check_contrast=False)


IMAGE_CASES = [
    Case("image-missing", _image("gone.tif", lambda p: None), ("gone.tif", "not found")),
    Case("image-empty", _image("empty.npy", lambda p: np.save(p, np.zeros((0, 0), np.uint16))),
         ("empty.npy", "empty", "non-empty")),
    Case("image-wrong-dtype-bool",
         _image("mask.npy", lambda p: np.save(p, np.eye(64, dtype=bool))),
         ("mask.npy", "frame 0", "dtype bool", "integer or floating-point")),
    Case("image-wrong-dtype-complex",
         _image("fft.npy", lambda p: np.save(p, np.ones((64, 64), complex))),
         ("fft.npy", "dtype complex", "integer or floating-point")),
    Case("image-4d-stack",
         _image("hyper.npy", lambda p: np.save(p, np.ones((2, 3, 64, 64), np.uint16))),
         ("hyper.npy", "(2, 3, 64, 64)", "one grey channel")),
    Case("image-colour-3d", _image("rgb.png", _png_rgb),
         ("rgb.png", "colour image", "one grey channel")),
    Case("image-all-zeros",
         _image("dark.tif", lambda p: tifffile.imwrite(p, np.zeros((128, 128), np.uint16))),
         ("dark.tif", "every pixel is 0", "blank", "exposure")),
    Case("image-saturated",
         _image("bright.tif",
                lambda p: tifffile.imwrite(p, np.full((128, 128), 65535, np.uint16))),
         ("bright.tif", "saturated", "lower the exposure")),
    Case("image-nan", _image("nan.npy", lambda p: np.save(p, np.full((64, 64), np.nan))),
         ("nan.npy", "NaN", "finite")),
    Case("image-corrupt",
         _image("broken.tif", lambda p: p.write_bytes(b"this is not a tiff file")),
         ("broken.tif", "unreadable image")),
]


def test_nonpositive_pixel_size_is_refused(cli, tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.full((64, 64), 100, np.uint16))
    res = cli("crops", tmp_path / "f.tif", "--pixel-size-um", "-1", "--out", tmp_path / "o")
    assert res.code != 0 and len(res.error_lines) == 1 and "--pixel-size-um -1" in res.stderr


# --- training folders -------------------------------------------------------------------------


def _crops(folder: Path, n: int, seed: int = 0, kind: str = "disk") -> None:
    """``n`` small uint16 crops with one blob each (or bars for ``kind='bar'``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    for i in range(n):
        cy, cx = 32 + rng.normal(0, 2, 2)
        if kind == "bar":
            blob = (np.abs(yy - cy) < 3) & (np.abs(xx - cx) < 12)
        else:
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < 100
        img = 100 + 1500 * blob + rng.normal(0, 20, (64, 64))
        tifffile.imwrite(folder / f"c{i:03d}.tif", np.clip(img, 0, 65535).astype(np.uint16))


def _labelled(tmp: Path, per_class: int = 12) -> Path:
    _crops(tmp / "lab" / "interphase", per_class, 0)
    _crops(tmp / "lab" / "metaphase", per_class, 1, "bar")
    return tmp / "lab"


def _train(prepare: Callable[[Path], list[str]]) -> Callable[[Path, Path], list[str]]:
    """``smartscope train --supervised-only`` (data checks fail before any training)."""

    def make(tmp: Path, bundle: Path) -> list[str]:
        extra = prepare(tmp)
        return ["train", "--labelled", tmp / "lab", "--out", tmp / "out", "--supervised-only",
                "--max-epochs", "1", "--quiet", *extra]

    return make


def _missing_folder(tmp: Path) -> list[str]:
    return []


def _empty_class(tmp: Path) -> list[str]:
    _labelled(tmp)
    (tmp / "lab" / "anaphase").mkdir()
    (tmp / "lab" / "anaphase" / "README.txt").write_text("to do")
    return []


def _one_class(tmp: Path) -> list[str]:
    _crops(tmp / "lab" / "interphase", 12)
    return []


def _unreadable(tmp: Path) -> list[str]:
    _labelled(tmp)
    (tmp / "lab" / "metaphase" / "c999.tif").write_bytes(b"II*\x00 truncated")
    return []


def _few_for_folds(tmp: Path) -> list[str]:
    _labelled(tmp, per_class=4)
    return ["--folds", "5"]


def _test_class_absent(tmp: Path) -> list[str]:
    _labelled(tmp)
    _crops(tmp / "test" / "interphase", 3, 5)
    _crops(tmp / "test" / "apoptosis", 3, 6)
    return ["--test", tmp / "test"]


def _missing_named_class(tmp: Path) -> list[str]:
    _labelled(tmp)
    return ["--classes", "interphase,anaphase"]


def _evaluate_absent_class(tmp: Path, bundle: Path) -> list[str]:
    _crops(tmp / "test" / "interphase", 3, 5)
    _crops(tmp / "test" / "prophase", 3, 6)
    return ["evaluate", bundle, "--test", tmp / "test"]


TRAINING_CASES = [
    Case("train-missing-folder", _train(_missing_folder), ("lab", "not found")),
    Case("train-empty-class-folder", _train(_empty_class), ("anaphase", "no crop files")),
    Case("train-one-class-only", _train(_one_class), ("lab", "at least two class folders")),
    Case("train-unreadable-file", _train(_unreadable), ("c999.tif", "fix or remove it")),
    Case("train-fewer-crops-than-folds", _train(_few_for_folds), ("--folds 5", "interphase")),
    Case("train-test-class-absent", _train(_test_class_absent),
         ("apoptosis", "not a training class")),
    Case("train-named-class-missing", _train(_missing_named_class),
         ("anaphase", "class folder not found")),
    Case("evaluate-test-class-absent", _evaluate_absent_class,
         ("prophase", "not a training class")),
]

CATALOGUE = PROTOCOL_CASES + BUNDLE_CASES + IMAGE_CASES + TRAINING_CASES


def test_catalogue_is_large_and_ids_unique():
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert len(CATALOGUE) >= 25
    assert {c.id.split("-")[0] for c in CATALOGUE} >= {"bundle", "image", "train"}


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.id)
def test_bad_input_gives_one_line(case, cli, tmp_path, tiny_bundle):
    argv = case.make(tmp_path, tiny_bundle)
    res = cli(*argv)
    assert res.code != 0, f"exit 0 for {case.id}: {res.stdout}"
    assert len(res.error_lines) == 1, res.stderr
    line = res.error_lines[0]
    assert line.startswith("error: ") and "Traceback" not in res.stderr + res.stdout
    for text in case.expect:
        assert text in line, f"{text!r} not in: {line}"
    assert ";" in line or ":" in line.removeprefix("error: ")  # what is wrong, then what to do
