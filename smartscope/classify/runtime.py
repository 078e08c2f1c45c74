"""Run a model bundle (``model.tflite`` + ``model_card.json``) with LiteRT, never TensorFlow.

The interpreter comes from ``ai_edge_litert`` (LiteRT, the maintained runtime); the deprecated
``tflite_runtime`` and the full ``tensorflow.lite`` are fallbacks, tried in that order.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from smartscope.classify.card import CARD_FILE, MODEL_FILE, ModelCard
from smartscope.errors import DependencyError, ModelBundleError
from smartscope.vision.preprocess import NORMALISATION

log = logging.getLogger(__name__)

BATCH_STEP = 16
"""Batch sizes are rounded up to a multiple of this, so that a frame with a few more or fewer
nuclei than the last one reuses the interpreter's plan instead of re-planning it."""

MAX_AUTO_THREADS = 4
"""The most LiteRT threads ``default_threads`` picks: one frame's batch of a few hundred 64 x 64
crops gains little past four, and the acquisition engine and camera threads need a core too."""

_INTERPRETER_MODULES = (
    "ai_edge_litert.interpreter",
    "tflite_runtime.interpreter",
    "tensorflow.lite",
)


def default_threads() -> int:
    """LiteRT threads when none are asked for: the CPU cores this process may run on, at most 4.

    Counts the cores in the process's CPU affinity where the platform reports it (a job pinned
    to two cores of a workstation gets 2), else every logical core.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(MAX_AUTO_THREADS, n))


def bundle_folder(path: str | Path) -> Path:
    """The bundle folder a path names: the folder itself, or the folder of its ``model.tflite``
    (any ``.tflite``) or ``model_card.json``."""
    path = Path(path)
    return path.parent if path.suffix == ".tflite" or path.name == CARD_FILE else path


MAX_THREADS = 64
"""The most inference threads asked for (the protocol's ``model.num_threads`` has the same)."""


def resolve_threads(num_threads: int | str | None) -> int:
    """A thread count from an int, ``"auto"`` or None (both: ``default_threads()``)."""
    if num_threads is None or num_threads == "auto":
        return default_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ModelBundleError(f"num_threads={num_threads!r}: give 1 or more threads, or 'auto'")
    if num_threads > MAX_THREADS:  # LiteRT allocates per thread: 100000 ran out of memory
        raise ModelBundleError(f"num_threads={num_threads}: give at most {MAX_THREADS} (this "
                               f"computer has {os.cpu_count()} cores), or 'auto'")
    return num_threads


def interpreter_class() -> type:
    """Return the first available TFLite ``Interpreter`` class (LiteRT first).

    Raises
    ------
    DependencyError
        If none of ``ai_edge_litert``, ``tflite_runtime`` or ``tensorflow`` is installed.
    """
    for name in _INTERPRETER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        log.debug("TFLite interpreter from %s", name)
        return module.Interpreter
    raise DependencyError(
        "no TFLite runtime found: install LiteRT with `pip install ai-edge-litert`"
    )


class Classifier:
    """A loaded model bundle that turns normalised crops into class probabilities.

    Parameters
    ----------
    bundle_path : path
        A bundle folder holding ``model.tflite`` and ``model_card.json`` (or the path of the
        ``.tflite`` file inside such a folder).
    num_threads : int or "auto"
        Threads the interpreter may use (>= 1); "auto" (the default) or None: the cores this
        process may use, at most 4 (``default_threads``).

    Notes
    -----
    Crops are run in one batch: the input tensor is resized only when the batch no longer fits
    (sizes are rounded up to a multiple of ``BATCH_STEP``; padding rows are dropped). An instance
    is not thread-safe: give each thread its own.

    Attributes
    ----------
    card : ModelCard
        The bundle's model card.
    classes : tuple of str
        Class names in output order.

    Raises
    ------
    ModelBundleError
        If a file is missing, the model is not a readable TFLite file, or the card does not match
        the model (input shape, number of classes, normalisation).
    DependencyError
        If no TFLite runtime is installed.
    """

    def __init__(self, bundle_path: str | Path, num_threads: int | str | None = "auto") -> None:
        path = Path(bundle_path)
        folder = bundle_folder(path)
        if path.is_file() and folder == path:
            raise ModelBundleError(
                f"{path}: is a file, not a model bundle; give the folder holding {MODEL_FILE} "
                "and model_card.json"
            )
        if not folder.is_dir():
            raise ModelBundleError(
                f"{folder}: model bundle folder not found; give a folder holding {MODEL_FILE} "
                "and model_card.json"
            )
        threads = resolve_threads(num_threads)
        model_path = path if path.suffix == ".tflite" else folder / MODEL_FILE
        if not model_path.is_file():
            raise ModelBundleError(
                f"{model_path}: model file not found; the bundle folder must hold {MODEL_FILE}"
            )
        self.card: ModelCard = ModelCard.load(folder)
        self.path = folder
        self.num_threads = threads
        content = model_path.read_bytes()
        interpreter_cls = interpreter_class()
        try:
            self._interp: Any = interpreter_cls(model_content=content, num_threads=self.num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelBundleError(
                f"{model_path}: not a readable TFLite model ({first}); re-export the bundle"
            ) from e
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = int(self._in["shape"][0])
        self._check_card(model_path)

    # ------------------------------------------------------------------ loading checks
    def _check_card(self, model_path: Path) -> None:
        card = self.card
        shape = tuple(int(s) for s in self._in["shape"])
        want = (card.input.size_px, card.input.size_px, card.input.channels)
        if len(shape) != 4 or shape[1:] != want:
            raise ModelBundleError(
                f"{model_path}: model input shape {shape[1:]} does not match the card's input "
                f"{want} (size_px, size_px, channels); fix 'input' in the model card"
            )
        n_out = int(np.prod(self._out["shape"][1:]))
        if n_out != len(card.classes):
            raise ModelBundleError(
                f"{model_path}: model has {n_out} outputs but the card lists "
                f"{len(card.classes)} classes; fix 'classes' in the model card"
            )
        if card.input.normalisation != NORMALISATION:
            raise ModelBundleError(
                f"{self.path}: card normalisation '{card.input.normalisation}' is not this "
                f"version's '{NORMALISATION}'; retrain or re-export the model with it"
            )
        dtype = np.dtype(self._in["dtype"]).name
        if card.quantisation.input_dtype != dtype:
            log.warning(
                "%s: card says input dtype %s but the model takes %s; using the model's",
                self.path, card.quantisation.input_dtype, dtype,
            )

    # ------------------------------------------------------------------ properties
    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in output order."""
        return self.card.classes

    @property
    def input_size(self) -> int:
        """Side of the square model input, in pixels."""
        return self.card.input.size_px

    @property
    def input_dtype(self) -> np.dtype:
        """The dtype of the model's input tensor (int8 for a quantised model)."""
        return np.dtype(self._in["dtype"])

    def __repr__(self) -> str:
        return (
            f"Classifier({str(self.path)!r}, classes={list(self.classes)}, "
            f"input={self.input_dtype.name}, num_threads={self.num_threads})"
        )

    # ------------------------------------------------------------------ inference
    def _capacity(self, n: int) -> int:
        """Batch size to run ``n`` crops at: the current one when it fits without much padding
        (re-planning the interpreter for a new size costs ~25 ms for a paper-sized model; a
        padded crop ~1 ms), else ``n`` rounded up to a multiple of ``BATCH_STEP``."""
        if self._batch >= n and self._batch - n < BATCH_STEP:
            return self._batch
        return n if n < BATCH_STEP else -(-n // BATCH_STEP) * BATCH_STEP

    def _resize(self, n: int) -> None:
        if n == self._batch:
            return
        shape = [n, self.input_size, self.input_size, self.card.input.channels]
        self._interp.resize_tensor_input(self._in["index"], shape, strict=False)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = n

    def _as_batch(self, x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x)
        size, ch = self.input_size, self.card.input.channels
        if arr.ndim == 3 and ch == 1:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[1:] != (size, size, ch):
            raise ModelBundleError(
                f"crops have shape {np.shape(x)}: give (N, {size}, {size}) or "
                f"(N, {size}, {size}, {ch}) normalised crops (vision.prepare_crops)"
            )
        return arr.astype(np.float32, copy=False)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of normalised crops.

        Parameters
        ----------
        x : array, shape (N, S, S) or (N, S, S, 1), float32 in [-1, 1]
            Crops prepared by ``smartscope.vision.prepare_crops`` (S = ``input_size``).

        Returns
        -------
        array of float32, shape (N, K)
            One row per crop, K = ``len(classes)``; rows sum to 1.

        Raises
        ------
        ModelBundleError
            If the crops do not have the model's input shape.
        """
        batch = self._as_batch(x)
        n, k = batch.shape[0], len(self.classes)
        if n == 0:
            return np.zeros((0, k), np.float32)
        cap = self._capacity(n)
        self._resize(cap)
        if cap > n:  # pad with background crops; their outputs are dropped
            pad = np.full((cap - n, *batch.shape[1:]), -1.0, np.float32)
            batch = np.concatenate([batch, pad])
        self._interp.set_tensor(self._in["index"], self._quantise(batch))
        self._interp.invoke()
        raw = self._interp.get_tensor(self._out["index"]).reshape(cap, k)[:n]
        return self._to_probabilities(raw)

    __call__ = predict

    def _quantise(self, batch: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._in["dtype"])
        if dtype.kind == "f":
            return batch.astype(dtype, copy=False)
        scale, zero = self._in["quantization"]
        info = np.iinfo(dtype)
        q = np.rint(batch / np.float32(scale)) + np.float32(zero)
        return np.clip(q, info.min, info.max).astype(dtype)

    def _to_probabilities(self, raw: np.ndarray) -> np.ndarray:
        if np.dtype(raw.dtype).kind in "iu":
            scale, zero = self._out["quantization"]
            probs = (raw.astype(np.float32) - np.float32(zero)) * np.float32(scale)
        else:
            probs = raw.astype(np.float32)
        # int8 softmax outputs are rounded to 1/256: clip and renormalise so rows sum to 1
        np.clip(probs, 0.0, None, out=probs)
        total = probs.sum(axis=1, keepdims=True)
        k = probs.shape[1]
        return np.divide(probs, total, out=np.full_like(probs, 1.0 / k), where=total > 0)


load_classifier = Classifier
