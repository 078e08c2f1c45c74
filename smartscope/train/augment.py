"""On-the-fly augmentation with Keras preprocessing layers (training only, never exported).

As in the paper: rotation up to +-30 degrees, translation up to 10 %, zoom 0.9-1.1, brightness
x[1.0, 1.3]; optionally (``max_gamma``) a random gamma and flips, for sets that mix raw camera
counts with contrast-equalised crops. Crops are in [-1, 1] with the background at -1, so pixels
moved in from outside the crop are filled with -1 and brightness scales the intensity above the
background, then clips.
"""

from __future__ import annotations

import keras
import numpy as np
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


@keras.saving.register_keras_serializable(package="smartscope")
class RandomGamma(layers.Layer):
    """Random gamma on the intensity above the background, per crop: u -> u ** g, u in [0, 1],
    log g uniform in [-log max_gamma, log max_gamma]. Mimics other contrast processing (CLAHE,
    a camera's or a pipeline's non-linear response) so a model sees more than one."""

    def __init__(self, max_gamma: float = 1.6, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_gamma, self.seed = float(max_gamma), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.max_gamma <= 1.0:
            return x
        span = float(np.log(self.max_gamma))
        g = ops.exp(keras.random.uniform((ops.shape(x)[0], 1, 1, 1), -span, span,
                                         seed=self.seed_generator))
        u = ops.clip((x - BACKGROUND) / 2.0, 1e-6, 1.0)
        return ops.power(u, g) * 2.0 + BACKGROUND

    def get_config(self):
        return {**super().get_config(), "max_gamma": self.max_gamma, "seed": self.seed}


def build_augmenter(
    seed: int,
    rotation_deg: float = 30.0,
    translation: float = 0.1,
    zoom: float = 0.1,
    brightness: tuple[float, float] = (1.0, 1.3),
    max_gamma: float = 1.0,
) -> keras.Sequential:
    """The augmentation pipeline; call it with ``training=True`` on a batch (N, 64, 64, 1).

    ``max_gamma`` > 1 adds a random gamma (contrast) change (:class:`RandomGamma`); also flips.
    """
    fill = {"fill_mode": "constant", "fill_value": BACKGROUND}
    return keras.Sequential(
        [
            layers.RandomRotation(rotation_deg / 360.0, seed=seed, **fill),
            layers.RandomTranslation(translation, translation, seed=seed + 1, **fill),
            layers.RandomZoom((-zoom, zoom), seed=seed + 2, **fill),
            RandomIntensityScale(*brightness, seed=seed + 3),
            *([RandomGamma(max_gamma, seed=seed + 4), layers.RandomFlip(seed=seed + 5)]
              if max_gamma > 1.0 else []),
        ],
        name="augment",
    )
