"""On-the-fly augmentation with Keras preprocessing layers (training only, never exported).

As in the paper: rotation up to +-30 degrees, translation up to 10 %, zoom 0.9-1.1, brightness
x[1.0, 1.3]. Crops are in [-1, 1] with the background at -1, so pixels moved in from outside the
crop are filled with -1 and brightness scales the intensity above the background, then clips.
"""

from __future__ import annotations

import keras
from keras import layers, ops

BACKGROUND = -1.0


@keras.saving.register_keras_serializable(package="smartscope")
class RandomIntensityScale(layers.Layer):
    """Multiply the intensity above the background by a factor drawn in [low, high], per crop."""

    def __init__(self, low: float = 1.0, high: float = 1.3, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.seed = float(low), float(high), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training:
            return x
        factor = keras.random.uniform(
            (ops.shape(x)[0], 1, 1, 1), self.low, self.high, seed=self.seed_generator
        )
        return ops.clip((x - BACKGROUND) * factor + BACKGROUND, -1.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high, "seed": self.seed}


def build_augmenter(
    seed: int,
    rotation_deg: float = 30.0,
    translation: float = 0.1,
    zoom: float = 0.1,
    brightness: tuple[float, float] = (1.0, 1.3),
) -> keras.Sequential:
    """The augmentation pipeline; call it with ``training=True`` on a batch (N, 64, 64, 1)."""
    fill = {"fill_mode": "constant", "fill_value": BACKGROUND}
    return keras.Sequential(
        [
            layers.RandomRotation(rotation_deg / 360.0, seed=seed, **fill),
            layers.RandomTranslation(translation, translation, seed=seed + 1, **fill),
            layers.RandomZoom((-zoom, zoom), seed=seed + 2, **fill),
            RandomIntensityScale(*brightness, seed=seed + 3),
        ],
        name="augment",
    )
