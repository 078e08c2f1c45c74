"""The semi-supervised GAN training step and loop (one custom ``tf.function`` per step).

Each SGAN step makes three updates, all of which reach the discriminator's shared backbone:

1. supervised: sparse categorical cross-entropy of the softmax head on N_B augmented labelled crops
   (optionally class-weighted);
2. unsupervised: binary cross-entropy of the Z/(Z+1) head on N_B/2 augmented real unlabelled
   crops (label 1), then N_B/2 generated crops (label 0);
3. generator: binary cross-entropy of the Z/(Z+1) head on N_B/2 new generated crops labelled real.

``--supervised-only`` runs step 1 alone on the same discriminator. Each update has its own Adam
optimiser (learning rate 6e-4, beta_1 0.5). The loop validates after each epoch, keeps the weights
with the best validation accuracy (or balanced accuracy, ``LoopConfig.monitor``) and stops
after ``patience`` epochs without improvement.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from smartscope.errors import TrainingDataError
from smartscope.train.augment import build_augmenter
from smartscope.train.interrupt import EpochStop
from smartscope.train.models import (
    DEFAULT_SIZE,
    LATENT_DIM,
    SIZES,
    build_discriminator,
    build_generator,
    classifier_head,
    real_fake_head,
)
from smartscope.train.splits import batch_size_rule

log = logging.getLogger(__name__)

Method = Literal["sgan", "supervised-only"]
"""How the discriminator is trained: semi-supervised GAN, or its supervised step alone."""
SGAN: Method = "sgan"
SUPERVISED_ONLY: Method = "supervised-only"
INTERRUPTED = "interrupted"
"""How ``LoopResult.stop_reason`` begins when Ctrl-C or SIGTERM ended the loop (``EpochStop``)."""


@dataclass(frozen=True)
class LoopConfig:
    """How long and how fast to train.

    Attributes
    ----------
    learning_rate, beta_1 : Adam settings of every optimiser
    max_epochs : upper bound on epochs
    patience : epochs without a better validation accuracy before stopping
    min_epochs : epochs always run before early stopping may stop
    steps_per_epoch : steps in an epoch; None = one pass over the unlabelled pool in half-batches,
        at least one pass over the labelled training crops, and at least 10 steps
    max_minutes : wall-clock budget; the loop stops after the epoch that exceeds it
    augment : apply the paper's augmentation to real crops
    batch_cap : the 100 in N_B = min(100, floor(N_labelled / 2))
    max_gamma : > 1 adds random gamma changes and flips to the augmentation (mixed contrast)
    rotation_deg, translation, zoom : geometric augmentation (see ``augment.build_augmenter``;
        rotation_deg 180 rotates to any orientation)
    flips : random flips; None: with ``max_gamma`` > 1
    max_downsample : > 1 adds a random loss of resolution down to 1 / max_downsample
    noise_sd : > 0 adds Gaussian noise up to this standard deviation
    label_smoothing : the supervised targets are (1 - a) one-hot + a / K
    lr_decay : cosine decay of every learning rate to 5 % of ``learning_rate`` over
        ``max_epochs`` x ``steps_per_epoch`` steps (the last epochs move the weights less, so
        the validation score, and the kept checkpoint, depend less on the last few batches)
    dropout : dropout rate after each convolution block of a new discriminator
    ema_half_life_epochs : > 0 keeps an exponential moving average of the discriminator's
        weights, updated after every step, whose weight on past steps halves every this many
        epochs; the averaged weights are what is validated each epoch, kept as the best
        checkpoint and exported (the raw weights keep training). 0: off
    monitor : validation score for early stopping and the best checkpoint, ``"accuracy"`` or
        ``"balanced_accuracy"`` (the mean per-class recall; use it with a class-weighted loss,
        which trades plain accuracy for the rare classes)
    keep_last : keep (and export) the weights of the last epoch instead of the best-validated
        one, and never stop early (a refit on all labels: no crop is left to choose an epoch
        by; the per-epoch scores are then those of the crops given as validation)
    stop_after_epochs : end after this many epochs while the learning-rate schedule still runs
        over ``max_epochs`` (None: at ``max_epochs``)
    """

    learning_rate: float = 6e-4
    beta_1: float = 0.5
    max_epochs: int = 100
    patience: int = 10
    min_epochs: int = 5
    steps_per_epoch: int | None = None
    max_minutes: float | None = None
    augment: bool = True
    batch_cap: int = 100
    monitor: str = "accuracy"
    max_gamma: float = 1.0
    rotation_deg: float = 30.0
    translation: float = 0.1
    zoom: float = 0.1
    flips: bool | None = None
    max_downsample: float = 1.0
    noise_sd: float = 0.0
    label_smoothing: float = 0.0
    dropout: float = 0.25
    lr_decay: bool = False
    ema_half_life_epochs: float = 0.0
    keep_last: bool = False
    stop_after_epochs: int | None = None

    def ema_decay(self, steps_per_epoch: int) -> float:
        """Per-step decay of the weight average (0: no average)."""
        if self.ema_half_life_epochs <= 0:
            return 0.0
        return float(0.5 ** (1.0 / (self.ema_half_life_epochs * max(1, steps_per_epoch))))

    def augmentation(self) -> dict:
        """The augmentation settings, as the card records them."""
        return {"rotation_deg": self.rotation_deg, "translation": self.translation,
                "zoom": self.zoom, "flips": self.max_gamma > 1.0 if self.flips is None
                else self.flips, "max_gamma": self.max_gamma,
                "max_downsample": self.max_downsample, "noise_sd": self.noise_sd}


@dataclass
class LoopResult:
    """What a training loop returns (the models hold the best weights)."""

    discriminator: keras.Model
    generator: keras.Model | None
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_score: float = 0.0
    stop_reason: str = ""
    elapsed_s: float = 0.0
    batch_size: int = 0
    steps_per_epoch: int = 0
    step_s: float = 0.0


def epoch_steps(n_train: int, n_unlabelled: int, batch: int, steps: int | None = None) -> int:
    """Steps per epoch (see :class:`LoopConfig`)."""
    if steps is not None:
        return max(1, int(steps))
    half = max(1, batch // 2)
    return max(10, math.ceil(n_unlabelled / half), math.ceil(n_train / batch))


LR_FLOOR = 0.05
"""With ``lr_decay`` the learning rate ends at this fraction of its start."""


def _adam(cfg: LoopConfig, total_steps: int | None = None) -> keras.optimizers.Optimizer:
    lr: float | keras.optimizers.schedules.LearningRateSchedule = cfg.learning_rate
    if cfg.lr_decay and total_steps:
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total_steps,
                                                    alpha=LR_FLOOR)
    return keras.optimizers.Adam(lr, beta_1=cfg.beta_1)


def predict_probs(model: keras.Model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class probabilities of a softmax model on crops (N, 64, 64, 1), batched, inference mode."""
    out = [np.asarray(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def _val_scores(c_model: keras.Model, x: np.ndarray, y: np.ndarray
                ) -> tuple[float, float, float]:
    """(accuracy, balanced accuracy, cross-entropy) on validation crops."""
    p = predict_probs(c_model, x)
    hit = np.argmax(p, axis=1) == y
    acc = float(np.mean(hit))
    balanced = float(np.mean([hit[y == k].mean() for k in np.unique(y)]))
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
    return acc, balanced, loss


def run_loop(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    *,
    x_unlabelled: np.ndarray | None = None,
    method: Method = SGAN,
    size: str = DEFAULT_SIZE,
    cfg: LoopConfig = LoopConfig(),
    seed: int = 0,
    discriminator: keras.Model | None = None,
    generator: keras.Model | None = None,
    trainable: Callable[[keras.Model], list] | None = None,
    class_weights: np.ndarray | None = None,
    sample_p: np.ndarray | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> LoopResult:
    """Train a discriminator (and, for SGAN, a generator) with early stopping.

    Parameters
    ----------
    x_train, y_train : labelled training crops (N, 64, 64, 1) in [-1, 1] and class indices
    x_val, y_val : validation crops and labels (early stopping and best checkpoint)
    n_classes : K, the number of classes
    x_unlabelled : unlabelled pool (required for SGAN; sets the epoch length)
    method : ``"sgan"`` or ``"supervised-only"``
    size : model size name in :data:`smartscope.train.models.SIZES`
    cfg : loop settings
    seed : seeds Keras, the batches, the latent vectors and the augmentation
    discriminator : start from this model instead of a fresh one (transfer)
    generator : start from this generator instead of a fresh one (SGAN only)
    trainable : function of the discriminator giving the variables to update (default all)
    class_weights : per-class weights of the supervised loss (default 1)
    sample_p : probability of drawing each labelled crop into a batch (balanced sampling,
        drawn with replacement); default: uniform, without replacement within a batch
    on_epoch : called with each epoch's record (losses, accuracies, time)

    Returns
    -------
    LoopResult with the best-validation weights loaded into the models.
    """
    if method not in (SGAN, SUPERVISED_ONLY):
        raise ValueError(f"method must be {SGAN!r} or {SUPERVISED_ONLY!r}, not {method!r}")
    if method == SGAN and (x_unlabelled is None or len(x_unlabelled) == 0):
        raise ValueError("SGAN training needs unlabelled crops")
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    batch = batch_size_rule(len(x_train), cfg.batch_cap)
    half = max(1, batch // 2)
    n_unl = 0 if x_unlabelled is None else len(x_unlabelled)
    steps = epoch_steps(len(x_train), n_unl, batch, cfg.steps_per_epoch)

    d_model = discriminator or build_discriminator(n_classes, SIZES[size], dropout=cfg.dropout)
    c_model, rf_model = classifier_head(d_model), real_fake_head(d_model)
    g_model = (generator or build_generator(SIZES[size])) if method == SGAN else None
    augment = (build_augmenter(seed, rotation_deg=cfg.rotation_deg, translation=cfg.translation,
                               zoom=cfg.zoom, max_gamma=cfg.max_gamma, flips=cfg.flips,
                               max_downsample=cfg.max_downsample, noise_sd=cfg.noise_sd)
               if cfg.augment else None)
    z_seed = keras.random.SeedGenerator(seed + 17)
    dv = trainable(d_model) if trainable else d_model.trainable_variables
    total = cfg.max_epochs * steps
    opt_c, opt_d = _adam(cfg, total), _adam(cfg, total)
    opt_g = _adam(cfg, total) if g_model is not None else None
    weights = tf.constant(
        np.ones(n_classes, np.float32) if class_weights is None else class_weights, tf.float32
    )
    xs_all = tf.constant(x_train, tf.float32)
    ys_all = tf.constant(y_train, tf.int32)
    xu_all = tf.constant(x_unlabelled, tf.float32) if n_unl else None
    cce = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    bce = keras.losses.BinaryCrossentropy()
    ones, zeros = tf.ones((half, 1)), tf.zeros((half, 1))

    def _aug(x):
        return augment(x, training=True) if augment is not None else x

    @tf.function
    def supervised_step(idx):
        xs = _aug(tf.gather(xs_all, idx))
        ys = tf.gather(ys_all, idx)
        with tf.GradientTape() as tape:
            probs = c_model(xs, training=True)
            loss_c = cce(tf.one_hot(ys, n_classes), probs, sample_weight=tf.gather(weights, ys))
        opt_c.apply_gradients(zip(tape.gradient(loss_c, dv), dv, strict=True))
        hits = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(probs, 1, output_type=tf.int32), ys),
                                      tf.float32))
        return loss_c, hits

    @tf.function
    def sgan_step(idx, uidx):
        loss_c, hits = supervised_step(idx)
        xu = _aug(tf.gather(xu_all, uidx))
        fake = g_model(keras.random.normal((half, LATENT_DIM), seed=z_seed), training=True)
        with tf.GradientTape() as tape:
            loss_d = (bce(ones, rf_model(xu, training=True))
                      + bce(zeros, rf_model(fake, training=True)))
        opt_d.apply_gradients(zip(tape.gradient(loss_d, dv), dv, strict=True))
        gv = g_model.trainable_variables
        with tf.GradientTape() as tape:
            fake = g_model(keras.random.normal((half, LATENT_DIM), seed=z_seed), training=True)
            loss_g = bce(ones, rf_model(fake, training=True))
        opt_g.apply_gradients(zip(tape.gradient(loss_g, gv), gv, strict=True))
        return loss_c, hits, loss_d, loss_g

    decay = cfg.ema_decay(steps)
    averaged = ([v for v in d_model.weights if v.dtype in ("float32", "float16", "float64")]
                if decay else [])
    shadows = [tf.Variable(v.numpy(), trainable=False) for v in averaged]

    @tf.function
    def ema_step():
        for s, v in zip(shadows, averaged, strict=True):
            s.assign(decay * s + (1.0 - decay) * tf.cast(v, s.dtype))

    result = LoopResult(d_model, g_model, batch_size=batch, steps_per_epoch=steps)
    best_weights = d_model.get_weights()
    best_g = g_model.get_weights() if g_model is not None else None
    best_acc, best_loss, best_epoch, waited = -1.0, math.inf, 0, 0
    start = time.perf_counter()
    step_times: list[float] = []
    with EpochStop("the last epoch" if cfg.keep_last else "the best epoch so far") as stop:
        last = min(cfg.max_epochs, cfg.stop_after_epochs or cfg.max_epochs)
        for epoch in range(1, last + 1):
            t0 = time.perf_counter()
            sums = np.zeros(4)
            for _ in range(steps):
                pick = (rng.choice(len(x_train), batch, replace=False) if sample_p is None
                        else rng.choice(len(x_train), batch, replace=True, p=sample_p))
                idx = tf.constant(pick, tf.int32)
                if g_model is not None:
                    uidx = tf.constant(rng.choice(n_unl, half, replace=n_unl < half), tf.int32)
                    out = sgan_step(idx, uidx)
                else:
                    out = (*supervised_step(idx), 0.0, 0.0)
                values = np.array([float(v) for v in out])
                if not np.all(np.isfinite(values)):
                    raise TrainingDataError(
                        f"training diverged at epoch {epoch}: a loss became NaN or infinite "
                        f"(loss_c {values[0]:.3g}, loss_d {values[2]:.3g}, "
                        f"loss_g {values[3]:.3g}); check the crops for extreme values or lower "
                        "learning_rate (--learning-rate); no model was written"
                    )
                sums += values
                if shadows:
                    ema_step()
            epoch_s = time.perf_counter() - t0
            step_times.append(epoch_s / steps)
            raw = [v.numpy() for v in averaged] if shadows else []
            for v, s in zip(averaged, shadows, strict=True):  # validate (and keep) the average
                v.assign(s)
            val_acc, val_bal, val_loss = _val_scores(c_model, x_val, y_val)
            score = val_bal if cfg.monitor == "balanced_accuracy" else val_acc
            improved = (cfg.keep_last or score > best_acc
                        or (score == best_acc and val_loss < best_loss))
            if improved:
                best_acc, best_loss, best_epoch, waited = score, val_loss, epoch, 0
                best_weights = d_model.get_weights()
                best_g = g_model.get_weights() if g_model is not None else None
            else:
                waited += 1
            for v, r in zip(averaged, raw, strict=True):  # the raw weights keep training
                v.assign(r)
            mean = sums / steps
            record = {
                "epoch": epoch, "steps": steps, "loss_c": mean[0], "train_accuracy": mean[1],
                "loss_d": mean[2] if g_model is not None else None,
                "loss_g": mean[3] if g_model is not None else None,
                "val_loss": val_loss, "val_accuracy": val_acc, "val_balanced_accuracy": val_bal,
                "monitor": cfg.monitor, "best_epoch": best_epoch, "best_val_score": best_acc,
                "epoch_s": epoch_s,
                "elapsed_s": time.perf_counter() - start,
            }
            result.history.append(record)
            log.info("epoch %d: %s", epoch, format_record(record))
            if on_epoch is not None:
                on_epoch(record)
            if cfg.min_epochs <= epoch < cfg.max_epochs and waited >= cfg.patience:
                result.stop_reason = (f"early stop: no better validation {cfg.monitor} "
                                      f"for {waited} epochs")
                break
            if cfg.max_minutes is not None and record["elapsed_s"] > cfg.max_minutes * 60:
                result.stop_reason = f"time budget of {cfg.max_minutes} min reached"
                break
            if stop.requested is not None:
                result.stop_reason = (f"{INTERRUPTED} ({stop.requested}) after epoch {epoch}; "
                                      f"{stop.kept} is kept")
                break
        else:
            result.stop_reason = (f"reached max_epochs {cfg.max_epochs}" if last == cfg.max_epochs
                                  else f"reached epoch {last} of the {cfg.max_epochs}-epoch "
                                  "schedule")
    d_model.set_weights(best_weights)
    if g_model is not None and best_g is not None:
        g_model.set_weights(best_g)
    result.best_epoch, result.best_val_score = best_epoch, best_acc
    result.elapsed_s = time.perf_counter() - start
    # the first epoch includes tracing; report the median of the others
    result.step_s = float(np.median(step_times[1:] if len(step_times) > 1 else step_times))
    return result


def format_record(r: dict) -> str:
    """One progress line for an epoch record."""
    parts = [f"loss_c {r['loss_c']:.3f}"]
    if r.get("loss_d") is not None:
        parts += [f"loss_d {r['loss_d']:.3f}", f"loss_g {r['loss_g']:.3f}"]
    parts += [
        f"train_acc {r['train_accuracy']:.3f}", f"val_loss {r['val_loss']:.3f}",
        f"val_acc {r['val_accuracy']:.3f}", f"val_bal {r['val_balanced_accuracy']:.3f}",
        f"best {r['best_val_score']:.3f}@{r['best_epoch']}", f"{r['epoch_s']:.1f} s",
    ]
    return "  ".join(parts)
