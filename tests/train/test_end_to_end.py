"""train -> export -> evaluate -> transfer on synthetic crops, through the CLI (tiny model)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from smartscope.classify import Classifier, ModelCard
from smartscope.cli import main
from smartscope.train.data import load_test

SHORT = ["--size", "tiny", "--max-epochs", "6", "--min-epochs", "3", "--patience", "3",
         "--quiet"]


@pytest.fixture(scope="module")
def run_dir(synth_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sgan"
    code = main(["train", "--labelled", str(synth_data["labelled"]),
                 "--unlabelled", str(synth_data["unlabelled"]), "--test", str(synth_data["test"]),
                 "--out", str(out), "--seed", "1", "--baseline", *SHORT])
    assert code == 0
    return out


@pytest.mark.slow
def test_train_writes_a_complete_run(run_dir, synth_data):
    for name in ("metrics.json", "confusion_matrix.png", "training_curves.png", "samples.png",
                 "discriminator.keras", "generator.keras", "run.json", "bundle/model.tflite"):
        assert (run_dir / name).is_file(), name
    card = ModelCard.load(run_dir / "bundle")
    assert card.classes == ("pair", "plate", "round") and card.method == "sgan"
    assert card.seed == 1 and card.quantisation.input_dtype == "int8"
    assert card.training["label_counts"]["total"] == {"pair": 30, "plate": 30, "round": 30}
    assert len(card.training["data_sha256"]["unlabelled_used"]) == 64
    assert card.scores["test_int8"]["accuracy"] > 0.5  # chance is 1/3
    assert card.scores["int8_vs_float"]["top1_agreement"] >= 0.9
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["baseline_supervised_only"]["test_float"]["n"] == 45
    assert metrics["timing"]["batch_size"] == 36  # min(100, 72 // 2)

    clf = Classifier(run_dir / "bundle")  # loads in the LiteRT runtime
    test = load_test(synth_data["test"], clf.classes)
    acc = float(np.mean(clf.predict(test.x).argmax(1) == test.y))
    assert acc > 0.5


@pytest.mark.slow
def test_export_and_evaluate_agree(run_dir, synth_data, tmp_path, capsys):
    before = json.loads((run_dir / "metrics.json").read_text())["test_int8"]["accuracy"]
    assert main(["export", str(run_dir)]) == 0
    out = tmp_path / "eval"
    assert main(["evaluate", str(run_dir / "bundle"), "--test", str(synth_data["test"]),
                 "--out", str(out)]) == 0
    scores = json.loads((out / "evaluation.json").read_text())
    assert (out / "confusion_matrix.png").is_file()
    assert scores["accuracy"] == pytest.approx(before, abs=0.03)
    assert set(scores["per_class"]) == {"pair", "plate", "round"}
    assert "macro F1" in capsys.readouterr().out


@pytest.mark.slow
def test_transfer_to_two_classes(run_dir, synth_data, tmp_path):
    out = tmp_path / "transfer"
    code = main(["transfer", "--base", str(run_dir / "bundle"),
                 "--labelled", str(synth_data["test"]), "--classes", "round,pair",
                 "--out", str(out), "--folds", "2", "--max-epochs", "3", "--patience", "2",
                 "--quiet"])
    assert code == 0
    card = ModelCard.load(out / "bundle")
    assert card.classes == ("round", "pair") and card.method == "transfer"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kfold"]["folds"] == 2 and len(metrics["kfold"]["accuracy"]["values"]) == 2
    Classifier(out / "bundle")


@pytest.mark.slow
def test_train_init_continues_a_checkpoint(run_dir, synth_data, tmp_path, capsys):
    """--init starts from a run's weights (same classes); other classes or SGAN are refused."""
    import keras

    from smartscope.train.runs import load_checkpoint

    out = tmp_path / "more"
    code = main(["train", "--labelled", str(synth_data["labelled"]), "--supervised-only",
                 "--init", str(run_dir / "bundle"), "--out", str(out), "--seed", "1",
                 "--rotation-deg", "180", "--max-downsample", "2", "--learning-rate", "1e-9",
                 "--size", "tiny", "--max-epochs", "1", "--min-epochs", "1", "--quiet"])
    assert code == 0
    card = ModelCard.load(out / "bundle")
    assert card.training["init"] == str(run_dir / "bundle")
    assert card.training["augmentation_settings"]["max_downsample"] == 2.0
    # a learning rate of 1e-9: the weights are the base's, not a fresh model's
    base, got = load_checkpoint(run_dir), load_checkpoint(out)
    for a, b in zip(base.get_weights(), got.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    keras.backend.clear_session()
    capsys.readouterr()
    assert main(["train", "--labelled", str(synth_data["labelled"]), "--supervised-only",
                 "--classes", "round,pair,plate", "--init", str(run_dir), "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "differ" in err and "--classes" in err and "\n" not in err.strip()
    assert main(["train", "--labelled", str(synth_data["labelled"]), "--unlabelled",
                 str(synth_data["unlabelled"]), "--init", str(run_dir), "--out",
                 str(tmp_path / "y"), "--quiet"]) == 2
    assert "--supervised-only" in capsys.readouterr().err
    assert main(["train", "--labelled", str(synth_data["labelled"]), "--supervised-only",
                 "--init", str(tmp_path / "nowhere"), "--out", str(tmp_path / "z"),
                 "--quiet"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    code = main(["train", "--labelled", str(tmp_path / "nowhere"), "--supervised-only",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nowhere" in err and "\n" not in err


def test_sgan_without_unlabelled_is_refused(synth_data, tmp_path, capsys):
    assert main(["train", "--labelled", str(synth_data["labelled"]),
                 "--out", str(tmp_path / "run")]) == 2
    assert "--unlabelled" in capsys.readouterr().err


def test_evaluate_does_not_import_tensorflow():
    code = ("import sys; import smartscope.train.evaluate, smartscope.commands.train; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
