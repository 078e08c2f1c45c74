"""The SGAN networks: a generator and a discriminator with two heads on one backbone.

Discriminator: four stride-2 convolution blocks (LeakyReLU 0.2, dropout 0.25) -> K logits.
Its supervised head is a softmax over the K classes; its unsupervised head is
D(x) = Z / (Z + 1), Z = sum_k exp(logit_k) (Salimans et al. 2016), a registered Keras layer so a
checkpoint reloads with ``safe_mode=True``. Only the softmax head is exported for inference.

Generator: z ~ N(0, I) of dimension 500 -> dense -> 4 x 4 x base -> four stride-2 transposed
convolutions -> tanh, 64 x 64 x 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

from smartscope.vision.preprocess import INPUT_SIZE

LATENT_DIM = 500

DEFAULT_CROP_UM = 20.64
"""The field new models are trained for, um: 64 px at 0.3225 um/px, the widest field that both
shipped data sets fill (the CellCognition crops are 64 px at 20x; the HeLa crops cover 41.28 um
and are cut down to it). docs/training.md compares it with 41.28 um."""


@dataclass(frozen=True)
class ModelSize:
    """Widths of the two networks.

    Attributes
    ----------
    disc_filters : filters of the four discriminator convolution blocks
    gen_base : channels of the generator's 4 x 4 seed map
    gen_filters : filters of the generator's first three transposed convolutions (the fourth
        makes the single output channel)
    """

    disc_filters: tuple[int, int, int, int] = (64, 128, 128, 256)
    gen_base: int = 256
    gen_filters: tuple[int, int, int] = (128, 128, 64)

    def to_dict(self) -> dict:
        return asdict(self)


#: named sizes: "paper" as in the paper; "fast" (the default) the paper's generator and a
#: discriminator whose first block has 32 filters instead of 64 (32-128-128-256: 24 M instead of
#: 34 M multiply-adds per crop, 0.7 instead of 1.0 ms per crop in int8 on one AVX2 core, the same
#: test scores within the seed spread; docs/training.md); "light" a narrower generator (paper
#: discriminator); "tiny" for smoke tests only.
SIZES: dict[str, ModelSize] = {
    "paper": ModelSize(),
    "fast": ModelSize(disc_filters=(32, 128, 128, 256)),
    "light": ModelSize(gen_base=128, gen_filters=(128, 64, 32)),
    "tiny": ModelSize(disc_filters=(16, 32, 32, 64), gen_base=32, gen_filters=(32, 16, 16)),
}

DEFAULT_SIZE = "fast"
"""The size ``smartscope train`` builds unless told otherwise: the discriminator that is fast
enough for a 2048 x 2048 frame of ~250 nuclei in 0.3 s on two cores."""


@keras.saving.register_keras_serializable(package="smartscope")
class SalimansActivation(layers.Layer):
    """Real/fake probability from class logits: D(x) = Z / (Z + 1), Z = sum_k exp(logit_k).

    Computed as sigmoid(logsumexp(logits)), which is the same value without overflow.
    """

    def call(self, logits):
        return ops.sigmoid(ops.logsumexp(logits, axis=-1, keepdims=True))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


def build_discriminator(
    n_classes: int, size: ModelSize = SIZES[DEFAULT_SIZE], dropout: float = 0.25
) -> keras.Model:
    """The discriminator with two outputs: ``class_probs`` (N, K) and ``real_fake`` (N, 1).

    ``classifier_head(model)`` gives the softmax-only model that is exported.
    """
    inp = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 1), name="image")
    x = inp
    for i, f in enumerate(size.disc_filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", name=f"conv{i + 1}")(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"act{i + 1}")(x)
        x = layers.Dropout(dropout, name=f"drop{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    probs = layers.Activation("softmax", name="class_probs")(logits)
    real_fake = SalimansActivation(name="real_fake")(logits)
    return keras.Model(inp, [probs, real_fake], name="discriminator")


def classifier_head(discriminator: keras.Model) -> keras.Model:
    """The supervised (softmax) head of a discriminator, sharing its weights."""
    return keras.Model(
        discriminator.input, discriminator.get_layer("class_probs").output, name="classifier"
    )


def real_fake_head(discriminator: keras.Model) -> keras.Model:
    """The unsupervised (Salimans) head of a discriminator, sharing its weights."""
    return keras.Model(
        discriminator.input, discriminator.get_layer("real_fake").output, name="real_fake"
    )


def build_generator(
    size: ModelSize = SIZES[DEFAULT_SIZE], latent_dim: int = LATENT_DIM, dropout: float = 0.25
) -> keras.Model:
    """The generator: z (N, latent_dim) -> crops (N, 64, 64, 1) in [-1, 1]."""
    inp = keras.Input(shape=(latent_dim,), name="z")
    side = INPUT_SIZE // 16
    x = layers.Dense(side * side * size.gen_base, name="dense")(inp)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Reshape((side, side, size.gen_base))(x)
    for i, f in enumerate(size.gen_filters):
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", name=f"up{i + 1}")(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        if dropout > 0:
            x = layers.Dropout(dropout)(x)
    out = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh",
                                 name="up4")(x)
    return keras.Model(inp, out, name="generator")


def conv_block_names(model: keras.Model) -> list[str]:
    """Names of the discriminator's convolution layers, input side first."""
    return [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)]
