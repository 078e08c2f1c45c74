"""On-the-fly augmentation with Keras preprocessing layers (training only, never exported).

As in the paper: rotation up to +-30 degrees, translation up to 10 %, zoom 0.9-1.1, brightness
x[1.0, 1.3]; optionally (``max_gamma``) a random gamma and flips, for sets that mix raw camera
counts with contrast-equalised crops; optionally any rotation (nuclei have no orientation), a
random loss of resolution (``max_downsample``: resampled down and back up, so crops of a sharp
objective also look like those of a weaker one resampled to the model's field) and Gaussian
noise (``noise_sd``). Crops are in [-1, 1] with the background at -1, so pixels moved in from
outside the crop are filled with -1 and brightness scales the intensity above the background,
then clips.
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


@keras.saving.register_keras_serializable(package="smartscope")
class RandomResolution(layers.Layer):
    """Lower the resolution of each crop by a random factor f in [1, max_factor]: resample it
    down to size / f (area average) and back up (bilinear). f is drawn per crop from ``levels``
    evenly spaced values (the first is 1: unchanged)."""

    def __init__(self, max_factor: float = 2.0, levels: int = 4, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.max_factor, self.levels, self.seed = float(max_factor), int(levels), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.max_factor <= 1.0 or self.levels < 2:
            return x
        h, w = int(x.shape[1]), int(x.shape[2])
        versions = [x]
        for f in np.linspace(1.0, self.max_factor, self.levels)[1:]:
            small = (max(1, round(h / f)), max(1, round(w / f)))
            down = ops.image.resize(x, small, interpolation="area")
            versions.append(ops.image.resize(down, (h, w), interpolation="bilinear"))
        pick = keras.random.randint((ops.shape(x)[0],), 0, self.levels,
                                    seed=self.seed_generator)
        weight = ops.one_hot(pick, self.levels)
        out = ops.einsum("lnhwc,nl->nhwc", ops.stack(versions, axis=0), weight)
        return ops.clip(out, -1.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "max_factor": self.max_factor, "levels": self.levels,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="smartscope")
class RandomNoise(layers.Layer):
    """Add Gaussian noise of a standard deviation drawn per crop in [0, max_sd] (in units of the
    [-1, 1] crop range), then clip to [-1, 1]."""

    def __init__(self, max_sd: float = 0.05, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_sd, self.seed = float(max_sd), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.max_sd <= 0.0:
            return x
        sd = keras.random.uniform((ops.shape(x)[0], 1, 1, 1), 0.0, self.max_sd,
                                  seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(x), seed=self.seed_generator)
        return ops.clip(x + sd * noise, -1.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "max_sd": self.max_sd, "seed": self.seed}


def build_augmenter(
    seed: int,
    rotation_deg: float = 30.0,
    translation: float = 0.1,
    zoom: float = 0.1,
    brightness: tuple[float, float] = (1.0, 1.3),
    max_gamma: float = 1.0,
    flips: bool | None = None,
    max_downsample: float = 1.0,
    noise_sd: float = 0.0,
) -> keras.Sequential:
    """The augmentation pipeline; call it with ``training=True`` on a batch (N, 64, 64, 1).

    Parameters
    ----------
    seed : seeds every random layer
    rotation_deg : rotations up to +- this angle (180: any orientation)
    translation : shifts up to this fraction of the crop side
    zoom : scale changes up to this fraction (0.1: 0.9-1.1)
    brightness : range of the factor on the intensity above the background
    max_gamma : > 1 adds a random gamma (contrast) change (:class:`RandomGamma`)
    flips : random horizontal and vertical flips; None: with ``max_gamma`` > 1 (as before)
    max_downsample : > 1 adds a random loss of resolution (:class:`RandomResolution`)
    noise_sd : > 0 adds Gaussian noise (:class:`RandomNoise`)
    """
    fill = {"fill_mode": "constant", "fill_value": BACKGROUND}
    flip = max_gamma > 1.0 if flips is None else flips
    return keras.Sequential(
        [
            layers.RandomRotation(rotation_deg / 360.0, seed=seed, **fill),
            layers.RandomTranslation(translation, translation, seed=seed + 1, **fill),
            layers.RandomZoom((-zoom, zoom), seed=seed + 2, **fill),
            *([RandomResolution(max_downsample, seed=seed + 6)] if max_downsample > 1.0 else []),
            RandomIntensityScale(*brightness, seed=seed + 3),
            *([RandomGamma(max_gamma, seed=seed + 4)] if max_gamma > 1.0 else []),
            *([layers.RandomFlip(seed=seed + 5)] if flip else []),
            *([RandomNoise(noise_sd, seed=seed + 7)] if noise_sd > 0.0 else []),
        ],
        name="augment",
    )
