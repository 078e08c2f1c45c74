"""int8 export: the classifier (softmax) head only, full-integer, checked against float.

The Z/(Z+1) real/fake head is never exported (it saturates at 127 in int8); inference only needs
the class probabilities. Conversion uses ``TFLiteConverter.from_keras_model`` with a
representative set of training crops; input and output tensors are int8.
"""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from smartscope.classify import MODEL_FILE, Classifier, InputSpec, ModelCard, Quantisation
from smartscope.classify.card import Calibration
from smartscope.classify.thresholds import (
    ThresholdTable,
    expected_calibration_error,
    fit_temperature,
    nll,
    softmax_t,
    threshold_table,
)
from smartscope.errors import ModelBundleError
from smartscope.outputs import staged_dir
from smartscope.train import runs
from smartscope.train.evaluate import mitotic_scores
from smartscope.train.models import classifier_head
from smartscope.train.reports import classification_scores, plot_confusion, write_json
from smartscope.train.sgan import predict_probs
from smartscope.vision.preprocess import CROP_UM, INPUT_SIZE, NORMALISATION

log = logging.getLogger(__name__)

REPRESENTATIVE_MAX = 300


def convert_int8(c_model: keras.Model, representative: np.ndarray, seed: int = 0) -> bytes:
    """Convert a softmax classifier to a full-integer int8 TFLite model (int8 in and out).

    Parameters
    ----------
    c_model : Keras model, crops (N, 64, 64, 1) -> probabilities (N, K)
    representative : crops used to calibrate activation ranges (up to 300 are drawn with seed)
    """
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(representative))[:REPRESENTATIVE_MAX]
    samples = representative[pick].astype(np.float32)

    def gen():
        for s in samples:
            yield [s[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(c_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):  # the converter prints its SavedModel summary
        tflite = converter.convert()
    log.debug("converter output: %s", chatter.getvalue())
    return tflite


def _quantisation(tflite: bytes) -> Quantisation:
    from smartscope.classify import interpreter_class

    interp = interpreter_class()(model_content=tflite)
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    return Quantisation(
        input_dtype=np.dtype(i["dtype"]).name, input_scale=float(i["quantization"][0]),
        input_zero_point=int(i["quantization"][1]), output_dtype=np.dtype(o["dtype"]).name,
        output_scale=float(o["quantization"][0]), output_zero_point=int(o["quantization"][1]),
    )


def calibrate(d_model: keras.Model, val_x: np.ndarray, val_y: np.ndarray) -> Calibration:
    """Fit a softmax temperature on validation crops and fold it into the logits layer.

    The logits layer's kernel and bias are divided by T, so the exported model's probabilities
    are the calibrated ones (nothing changes at run time).
    """
    c_model = classifier_head(d_model)
    logp = np.log(np.clip(predict_probs(c_model, val_x), 1e-12, 1.0))
    t = fit_temperature(logp, val_y)
    before, after = softmax_t(logp, 1.0), softmax_t(logp, t)
    apply_temperature(d_model, t)
    cal = Calibration(temperature=round(t, 4), fitted_on=f"validation (n={len(val_y)})",
                      nll_before=round(nll(before, val_y), 4),
                      nll_after=round(nll(after, val_y), 4),
                      ece_before=round(expected_calibration_error(before, val_y), 4),
                      ece_after=round(expected_calibration_error(after, val_y), 4))
    log.info("temperature %.3f: NLL %.3f -> %.3f, ECE %.3f -> %.3f", t, cal.nll_before,
             cal.nll_after, cal.ece_before, cal.ece_after)
    return cal


def apply_temperature(d_model: keras.Model, temperature: float) -> None:
    """Fold a softmax temperature into the logits layer (kernel and bias divided by it)."""
    layer = d_model.get_layer("logits")
    layer.set_weights([w / np.float32(temperature) for w in layer.get_weights()])


def export_run(run_dir: Path) -> Path:
    """Export a run folder's checkpoint to its int8 bundle and write its scores.

    Writes ``RUN_DIR/bundle/`` (``model.tflite`` + ``model_card.json``), ``metrics.json`` and
    ``confusion_matrix.png`` (int8 model on the test set when the run has one, else validation).

    Returns
    -------
    The bundle folder.

    Raises
    ------
    ModelBundleError
        If the run folder lacks its checkpoint or run description.
    """
    run_dir = Path(run_dir)
    final = run_dir / runs.BUNDLE_DIR
    runs.load_info(run_dir, require=("classes", "method"))  # before anything is made in it
    runs.check_bundle_replaceable(run_dir, "RUN_DIR")
    with staged_dir(final, replace=True) as bundle:  # moved into place when complete
        _export_into(run_dir, bundle)
    return final


def _export_into(run_dir: Path, bundle: Path) -> None:
    info = runs.load_info(run_dir)
    d_model = runs.load_checkpoint(run_dir)
    data = runs.load_export_data(run_dir)
    classes = tuple(info["classes"])
    refit = info.get("refit")  # trained on every label: nothing to calibrate on, see refit.py
    cal = table = None
    fit_key = "training_int8" if refit else "validation_int8"
    if refit:
        if refit.get("calibration") is not None:
            cal = Calibration.model_validate(refit["calibration"])
            apply_temperature(d_model, cal.temperature)
        if refit.get("thresholds") is not None:
            table = ThresholdTable.model_validate(refit["thresholds"])
    elif info.get("calibrate", False) and len(np.unique(data["val_y"])) >= 2:
        cal = calibrate(d_model, data["val_x"], data["val_y"])
    c_model = classifier_head(d_model)
    seed = int(info.get("seed", 0))
    tflite = convert_int8(c_model, data["representative"], seed)
    (bundle / MODEL_FILE).write_bytes(tflite)
    card = ModelCard(
        name=info.get("name") or run_dir.name, classes=classes,
        input=InputSpec(size_px=INPUT_SIZE, channels=1,
                        crop_um=float(info.get("crop_um", CROP_UM)), normalisation=NORMALISATION),
        quantisation=_quantisation(tflite), created=datetime.now(UTC).isoformat(timespec="seconds"),
        method=info["method"], seed=seed, training=info.get("training") or {},
        notes=info.get("notes", []),
        calibration=cal, thresholds=None,
        refit=None if not refit else {k: v for k, v in refit.items()
                                      if k not in ("calibration", "thresholds")},
    )
    card.save(bundle)
    classifier = Classifier(bundle)

    metrics = dict(info.get("metrics", {}))
    check_x, check_y = data["val_x"], data["val_y"]
    if "test_x" in data:
        check_x = np.concatenate([check_x, data["test_x"]])
        check_y = np.concatenate([check_y, data["test_y"]])
    p_float = predict_probs(c_model, check_x)
    p_int8 = classifier.predict(check_x)
    float_accuracy = round(float(np.mean(p_float.argmax(1) == check_y)), 4)
    int8_accuracy = round(float(np.mean(p_int8.argmax(1) == check_y)), 4)
    agreement = {
        "set": ("training" if refit else "validation") + (" + test" if "test_x" in data else ""),
        "n": int(len(check_y)),
        "top1_agreement": round(float(np.mean(p_float.argmax(1) == p_int8.argmax(1))), 4),
        "float_accuracy": float_accuracy,
        "int8_accuracy": int8_accuracy,
        "int8_minus_float_points": round(100 * (int8_accuracy - float_accuracy), 2),
    }
    metrics["int8_vs_float"] = agreement
    val_probs = classifier.predict(data["val_x"])
    val_pred = val_probs.argmax(1)
    if not refit:
        table = threshold_table(val_probs, data["val_y"], classes, "validation, int8")
    metrics[fit_key] = classification_scores(data["val_y"], val_pred, classes)
    metrics[fit_key]["mitotic_vs_not"] = mitotic_scores(data["val_y"], val_pred, classes)
    shown, shown_name = metrics[fit_key], "training (not held out)" if refit else "validation"
    if "test_x" in data:
        test_pred = classifier.predict(data["test_x"]).argmax(1)
        metrics["test_int8"] = classification_scores(data["test_y"], test_pred, classes)
        metrics["test_int8"]["mitotic_vs_not"] = mitotic_scores(data["test_y"], test_pred, classes)
        names = info.get("test_sets", [])
        if len(names) > 1 and "test_set" in data:
            metrics["test_int8_by_set"] = {}
            for i, name in enumerate(names):
                m = data["test_set"] == i
                s = classification_scores(data["test_y"][m], test_pred[m], classes)
                s["mitotic_vs_not"] = mitotic_scores(data["test_y"][m], test_pred[m], classes)
                metrics["test_int8_by_set"][name] = s
        shown, shown_name = metrics["test_int8"], "held-out test"
    plot_confusion(np.asarray(shown["confusion_matrix"]), classes,
                   run_dir / runs.CONFUSION_PNG,
                   f"{card.name}: int8, {shown_name} (n={shown['n']}, acc {shown['accuracy']})")
    scores = {k: _brief(v) for k, v in metrics.items()}
    if "test_int8_by_set" in metrics:
        scores["test_int8_by_set"] = {k: _brief(v) for k, v in metrics["test_int8_by_set"].items()}
    card = card.model_copy(update={"scores": scores, "thresholds": table})
    card.save(bundle)
    write_json(run_dir / runs.METRICS_JSON, metrics)
    log.info("exported %s: int8/float top-1 agreement %.3f", run_dir / runs.BUNDLE_DIR,
             agreement["top1_agreement"])


def _brief(section):
    """Card scores: keep headline numbers and per-class F1, drop long lists."""
    if not isinstance(section, dict):
        return section
    out = {}
    for key, value in section.items():
        if key == "per_class" and isinstance(value, dict):
            out["per_class_f1"] = {c: v.get("f1") for c, v in value.items()}
            out["support"] = {c: v.get("support") for c, v in value.items()}
        elif key == "history":
            continue
        else:
            out[key] = value
    return out


def check_bundle(bundle: Path) -> Classifier:
    """Load a bundle with the LiteRT runtime (raises ModelBundleError when it is unusable)."""
    if not Path(bundle).is_dir():
        raise ModelBundleError(f"{bundle}: bundle folder not found")
    return Classifier(bundle)
