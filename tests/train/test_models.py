"""The networks: the Salimans head, checkpoint reload with safe_mode, shapes, augmentation."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from smartscope.train import models  # noqa: E402
from smartscope.train.augment import build_augmenter  # noqa: E402


def test_salimans_activation_is_z_over_z_plus_one():
    logits = np.array([[0.0, 1.0, -2.0], [30.0, 40.0, 50.0], [-40.0, -50.0, -60.0]], np.float32)
    out = np.asarray(models.SalimansActivation()(logits))
    z = np.exp(logits[:1].astype(np.float64)).sum()
    assert out.shape == (3, 1)
    assert out[0, 0] == pytest.approx(z / (z + 1), rel=1e-6)
    assert out[1, 0] == pytest.approx(1.0) and out[2, 0] == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(out).all()


def test_checkpoint_reloads_with_safe_mode(tmp_path):
    d = models.build_discriminator(3, models.SIZES["tiny"])
    x = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 1)).astype(np.float32)
    probs, real = (np.asarray(t) for t in d(x, training=False))
    path = tmp_path / "d.keras"
    d.save(path)
    back = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert isinstance(back.get_layer("real_fake"), models.SalimansActivation)
    probs2, real2 = (np.asarray(t) for t in back(x, training=False))
    np.testing.assert_allclose(probs, probs2, atol=1e-6)
    np.testing.assert_allclose(real, real2, atol=1e-6)
    head = models.classifier_head(back)
    assert head.output_shape == (None, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_paper_sized_networks():
    d = models.build_discriminator(5)
    assert models.conv_block_names(d) == ["conv1", "conv2", "conv3", "conv4"]
    assert 0.5e6 < d.count_params() < 0.6e6
    g = models.build_generator(models.SIZES["tiny"])
    z = np.random.default_rng(0).normal(size=(2, models.LATENT_DIM)).astype(np.float32)
    out = np.asarray(g(z, training=False))
    assert out.shape == (2, 64, 64, 1) and np.abs(out).max() <= 1


def test_augmentation_keeps_range_and_changes_crops():
    aug = build_augmenter(seed=0)
    x = -np.ones((8, 64, 64, 1), np.float32)
    x[:, 24:40, 28:36] = 0.5
    out = np.asarray(aug(x, training=True))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert not np.allclose(out, x)
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)


def test_one_sgan_epoch_updates_discriminator_and_generator():
    from smartscope.train.sgan import LoopConfig, run_loop

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (12, 64, 64, 1)).astype(np.float32)
    y = np.arange(12) % 3
    d = models.build_discriminator(3, models.SIZES["tiny"])
    g = models.build_generator(models.SIZES["tiny"])
    d0, g0 = [w.copy() for w in d.get_weights()], [w.copy() for w in g.get_weights()]
    res = run_loop(x[:8], y[:8], x[8:], y[8:], 3, x_unlabelled=x, size="tiny", discriminator=d,
                   generator=g, cfg=LoopConfig(max_epochs=1, steps_per_epoch=2), seed=0)
    assert res.batch_size == 4 and len(res.history) == 1
    assert all(not np.allclose(a, b) for a, b in zip(d0, d.get_weights(), strict=True))
    assert all(not np.allclose(a, b) for a, b in zip(g0, g.get_weights(), strict=True))
    assert res.history[0]["loss_d"] is not None and res.history[0]["loss_g"] is not None


def test_transfer_head_keeps_backbone_and_weights_classes():
    from smartscope.train.pipeline import class_weights
    from smartscope.train.transfer import new_discriminator

    base = models.build_discriminator(5, models.SIZES["tiny"])
    new = new_discriminator(base, 2)
    assert new.output_shape[0] == (None, 2)
    for name in models.conv_block_names(base):
        for a, b in zip(base.get_layer(name).get_weights(), new.get_layer(name).get_weights(),
                        strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1]), 3), [4 / 9, 4 / 3, 0])


def test_transfer_head_matched_starts_shared_classes_from_the_base():
    from smartscope.train.transfer import new_discriminator

    base = models.build_discriminator(3, models.SIZES["tiny"])
    kernel, bias = base.get_layer("logits").get_weights()
    new = new_discriminator(base, 3, ("apoptosis", "metaphase", "interphase"),
                            ("interphase", "prometaphase", "metaphase"))
    new_kernel, new_bias = new.get_layer("logits").get_weights()
    np.testing.assert_array_equal(new_kernel[:, 1], kernel[:, 2])  # metaphase
    np.testing.assert_array_equal(new_kernel[:, 2], kernel[:, 0])  # interphase
    assert new_bias[1] == bias[2] and new_bias[2] == bias[0]
    assert not np.allclose(new_kernel[:, 0], kernel[:, 1])  # apoptosis: fresh
    fresh = new_discriminator(base, 3, ("apoptosis", "metaphase", "interphase"), ())
    assert not np.allclose(fresh.get_layer("logits").get_weights()[0][:, 2], kernel[:, 0])


def test_transfer_refuses_an_unknown_head(tmp_path):
    from smartscope.errors import TrainingDataError
    from smartscope.train.transfer import TransferRequest, fit_transfer

    base = models.build_discriminator(3, models.SIZES["tiny"])
    req = TransferRequest(base=tmp_path, labelled=tmp_path, out=tmp_path / "o",
                          head="new")  # type: ignore[arg-type]
    with pytest.raises(TrainingDataError, match=r"head \(--head\) is 'new'"):
        fit_transfer(req, base, None, None, 0)  # type: ignore[arg-type]


def _bars(n: int = 8) -> np.ndarray:
    """Crops with a fine vertical stripe pattern on a -1 background (high spatial frequency)."""
    x = -np.ones((n, 64, 64, 1), np.float32)
    x[:, 16:48, 16:48:2] = 0.8
    return x


def test_random_resolution_blurs_some_crops_and_keeps_range():
    from smartscope.train.augment import RandomResolution

    x = _bars(16)
    out = np.asarray(RandomResolution(2.0, seed=0)(x, training=True))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    # horizontal pixel-to-pixel contrast inside the pattern: 1.8 when sharp, lower when blurred
    contrast = np.abs(np.diff(out[:, 20:44, 20:44, 0], axis=2)).mean(axis=(1, 2))
    assert (contrast < 1.0).any(), "no crop lost resolution"
    assert np.isclose(contrast, 1.8, atol=1e-4).any(), "factor 1 (unchanged) never drawn"
    np.testing.assert_array_equal(np.asarray(RandomResolution(2.0)(x, training=False)), x)


def test_random_noise_changes_crops_within_range():
    from smartscope.train.augment import RandomNoise

    x = _bars()
    out = np.asarray(RandomNoise(0.1, seed=0)(x, training=True))
    assert out.min() >= -1 and out.max() <= 1 and not np.allclose(out, x)
    sd = np.std(out - x, axis=(1, 2, 3))
    assert sd.max() < 0.1 and np.ptp(sd) > 0  # a different level per crop, at most max_sd
    np.testing.assert_array_equal(np.asarray(RandomNoise(0.1)(x, training=False)), x)


def test_augmenter_layers_follow_the_settings():
    def names(aug):
        return [type(layer).__name__ for layer in aug.layers]

    old = names(build_augmenter(seed=0, max_gamma=1.6))
    assert old == ["RandomRotation", "RandomTranslation", "RandomZoom", "RandomIntensityScale",
                   "RandomGamma", "RandomFlip"]  # as before the new settings existed
    assert "RandomFlip" not in names(build_augmenter(seed=0))
    full = build_augmenter(seed=0, rotation_deg=180, flips=True, max_downsample=2.0,
                           noise_sd=0.05)
    assert names(full) == ["RandomRotation", "RandomTranslation", "RandomZoom",
                           "RandomResolution", "RandomIntensityScale", "RandomFlip",
                           "RandomNoise"]
    assert full.layers[0].factor == (-0.5, 0.5)  # any orientation
    x = _bars()
    out = np.asarray(full(x, training=True))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1


def test_loop_uses_dropout_and_label_smoothing():
    from smartscope.train.sgan import SUPERVISED_ONLY, LoopConfig, run_loop

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (12, 64, 64, 1)).astype(np.float32)
    y = np.arange(12) % 3
    cfg = LoopConfig(max_epochs=1, steps_per_epoch=2, dropout=0.4, label_smoothing=0.3,
                     rotation_deg=180, max_downsample=2.0, noise_sd=0.05, flips=True)
    res = run_loop(x[:8], y[:8], x[8:], y[8:], 3, method=SUPERVISED_ONLY, size="tiny",
                   cfg=cfg, seed=0)
    assert res.discriminator.get_layer("drop1").rate == 0.4
    # smoothed targets: the loss cannot fall below their entropy
    a = 0.3
    floor = -((1 - a + a / 3) * np.log(1 - a + a / 3) + 2 * (a / 3) * np.log(a / 3))
    assert res.history[0]["loss_c"] >= floor
    assert cfg.augmentation() == {"rotation_deg": 180, "translation": 0.1, "zoom": 0.1,
                                  "flips": True, "max_gamma": 1.0, "max_downsample": 2.0,
                                  "noise_sd": 0.05}
    assert LoopConfig(max_gamma=1.6).augmentation()["flips"] is True


def test_train_command_passes_the_augmentation_options(monkeypatch, tmp_path):
    from smartscope.cli import main
    from smartscope.train import pipeline
    from smartscope.train.sgan import LoopConfig

    seen = {}

    def fake_train_run(req, on_epoch=None, **flags):  # records the request, trains nothing
        seen["req"] = req
        raise SystemExit(0)

    monkeypatch.setattr(pipeline, "train_run", fake_train_run)
    with pytest.raises(SystemExit):
        main(["train", "--labelled", str(tmp_path), "--out", str(tmp_path / "run"),
              "--supervised-only", "--rotation-deg", "180", "--translation", "0.15", "--zoom",
              "0.2", "--no-flips", "--max-downsample", "2", "--noise-sd", "0.04",
              "--label-smoothing", "0.1", "--dropout", "0.4", "--lr-decay",
              "--ema-half-life-epochs", "2"])
    loop = seen["req"].loop
    assert (loop.rotation_deg, loop.translation, loop.zoom, loop.flips) == (180, 0.15, 0.2, False)
    assert (loop.max_downsample, loop.noise_sd, loop.label_smoothing, loop.dropout) == (
        2.0, 0.04, 0.1, 0.4)
    assert loop.lr_decay and not LoopConfig().lr_decay
    assert loop.ema_half_life_epochs == 2.0 and LoopConfig().ema_half_life_epochs == 0.0


def test_lr_decay_is_a_cosine_to_the_floor():
    from smartscope.train.sgan import LR_FLOOR, LoopConfig, _adam

    assert float(_adam(LoopConfig(), 100).learning_rate) == pytest.approx(6e-4)
    opt = _adam(LoopConfig(lr_decay=True), 100)
    schedule = opt._learning_rate
    assert float(schedule(0)) == pytest.approx(6e-4)
    assert float(schedule(50)) == pytest.approx(6e-4 * (LR_FLOOR + (1 - LR_FLOOR) / 2), rel=1e-4)
    assert float(schedule(100)) == pytest.approx(6e-4 * LR_FLOOR, rel=1e-4)


def test_weight_average_is_validated_kept_and_saved(tmp_path):
    """One step, half-life one epoch: the kept weights are 0.5 x start + 0.5 x after the step."""
    import keras

    from smartscope.train import runs
    from smartscope.train.sgan import SUPERVISED_ONLY, LoopConfig, _val_scores, run_loop

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (12, 64, 64, 1)).astype(np.float32)
    y = np.arange(12) % 3
    start = models.build_discriminator(3, models.SIZES["tiny"]).get_weights()
    kept = {}
    for half_life in (0.0, 1.0):
        keras.utils.set_random_seed(1)  # the same dropout seeds in both models
        d = models.build_discriminator(3, models.SIZES["tiny"])
        d.set_weights(start)
        cfg = LoopConfig(max_epochs=1, steps_per_epoch=1, ema_half_life_epochs=half_life)
        res = run_loop(x[:8], y[:8], x[8:], y[8:], 3, method=SUPERVISED_ONLY, size="tiny",
                       discriminator=d, cfg=cfg, seed=0)
        kept[half_life] = [w.copy() for w in res.discriminator.get_weights()]
    assert LoopConfig(ema_half_life_epochs=1.0).ema_decay(1) == pytest.approx(0.5)
    assert LoopConfig().ema_decay(40) == 0.0
    raw, averaged = kept[0.0], kept[1.0]
    assert any(not np.allclose(a, r) for a, r in zip(averaged, raw, strict=True))
    for a, s, r in zip(averaged, start, raw, strict=True):
        np.testing.assert_allclose(a, 0.5 * s + 0.5 * r, rtol=1e-4, atol=1e-6)
    # the validation score of the epoch is that of the averaged weights
    _, _, val_loss = _val_scores(models.classifier_head(res.discriminator), x[8:], y[8:])
    assert res.history[0]["val_loss"] == pytest.approx(val_loss, rel=1e-5)
    # and the averaged weights are what the checkpoint holds
    runs.save_checkpoint(tmp_path, res.discriminator, None)
    saved = runs.load_checkpoint(tmp_path)
    for a, b in zip(averaged, saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_stop_reason_says_max_epochs_when_every_epoch_ran():
    """With ``min_epochs == max_epochs`` the last epoch used to read "early stop"."""
    from smartscope.train.sgan import SUPERVISED_ONLY, LoopConfig, run_loop

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (12, 64, 64, 1)).astype(np.float32)
    y = np.arange(12) % 3
    reasons = {}
    for min_epochs in (1, 3):
        cfg = LoopConfig(max_epochs=3, min_epochs=min_epochs, patience=0, steps_per_epoch=1)
        res = run_loop(x[:8], y[:8], x[8:], y[8:], 3, method=SUPERVISED_ONLY, size="tiny",
                       cfg=cfg, seed=0)
        reasons[min_epochs] = (len(res.history), res.stop_reason)
    assert reasons[1][0] == 1 and reasons[1][1].startswith("early stop")
    assert reasons[3] == (3, "reached max_epochs 3")
