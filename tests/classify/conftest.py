"""Tiny model bundles built with TensorFlow inside the tests (the package path never imports it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartscope.classify.card import MODEL_FILE, InputSpec, ModelCard, Quantisation
from smartscope.vision.preprocess import CROP_UM, NORMALISATION

CLASSES = ("interphase", "metaphase", "anaphase")


def _keras_model(size: int, n_classes: int, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1))
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(n_classes)(h)
    outputs = keras.layers.Activation("softmax")(h)
    model = keras.Model(inputs, outputs)
    # make the classes well separated so that int8 rounding rarely flips the winner
    dense = model.layers[-2]
    w, b = dense.get_weights()
    dense.set_weights([w * 8.0, b])
    return model


def blob_crops(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Normalised crops of one soft-edged elliptic blob each (nucleus-like), (n, size, size)."""
    from smartscope.vision.preprocess import normalise

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        cy, cx = size / 2 + rng.normal(0, 3, 2)
        ry, rx = rng.uniform(5, 16, 2)
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        blob = rng.uniform(100, 3000) / (1 + np.exp((d - 1) * rng.uniform(3, 12)))
        out[i] = 33000 + blob + rng.normal(0, rng.uniform(3, 20), (size, size))
    return normalise(out)


def _representative(size: int, seed: int):
    crops = blob_crops(64, size, seed)

    def gen():
        for crop in crops:
            yield [crop[None, :, :, None]]

    return gen


def build_bundle(
    folder: Path,
    *,
    int8: bool = True,
    classes: tuple[str, ...] = CLASSES,
    size: int = 64,
    seed: int = 0,
    model=None,
) -> Path:
    """Write a bundle folder with a small conv model; returns the folder."""
    import tensorflow as tf

    model = model or _keras_model(size, len(classes), seed)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    quant = Quantisation(input_dtype="float32", output_dtype="float32")
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(size, seed)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    content = converter.convert()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(content)
    if int8:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_content=content)
        i_scale, i_zero = interp.get_input_details()[0]["quantization"]
        o_scale, o_zero = interp.get_output_details()[0]["quantization"]
        quant = Quantisation(
            input_scale=i_scale, input_zero_point=i_zero,
            output_scale=o_scale, output_zero_point=o_zero,
        )
    card = ModelCard(
        name=folder.name,
        classes=classes,
        input=InputSpec(size_px=size, crop_um=CROP_UM, normalisation=NORMALISATION),
        quantisation=quant,
        method="supervised-only",
        seed=seed,
    )
    card.save(folder)
    return folder


@pytest.fixture(scope="session")
def keras_model():
    """The Keras model behind the bundles (for float reference predictions)."""
    return _keras_model(64, len(CLASSES), 0)


@pytest.fixture(scope="session")
def int8_bundle(tmp_path_factory, keras_model) -> Path:
    return build_bundle(tmp_path_factory.mktemp("bundles") / "int8", model=keras_model)


@pytest.fixture(scope="session")
def float_bundle(tmp_path_factory, keras_model) -> Path:
    return build_bundle(
        tmp_path_factory.mktemp("bundles") / "float", int8=False, model=keras_model
    )
