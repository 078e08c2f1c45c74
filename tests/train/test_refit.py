"""``smartscope refit``: a held-out run's recipe trained again on all its labels (tiny model)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartscope.classify import Classifier, ModelCard
from smartscope.cli import main
from smartscope.errors import TrainingDataError
from smartscope.train.pipeline import TrainRequest, folder_label
from smartscope.train.recipe import RECIPE, Recipe, read_recipe, recipe_of
from smartscope.train.refit import _load_checked, default_epochs

HELD_OUT = ["--supervised-only", "--balanced", "--lr-decay", "--size", "tiny", "--max-epochs",
            "1000", "--min-epochs", "1", "--patience", "1", "--steps-per-epoch", "2", "--seed", "4",
            "--quiet"]
"""A long decaying schedule that stops early: a refit of all of it can be interrupted."""
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(synth_data, tmp_path_factory):
    """A copy of the labelled folder (some tests change it) and the held-out run trained on it."""
    root = tmp_path_factory.mktemp("refit")
    labelled = root / "data" / "labelled"
    shutil.copytree(synth_data["labelled"], labelled)
    run = root / "held_out"
    assert main(["train", "--labelled", str(labelled), "--test", str(synth_data["test"]),
                 "--out", str(run), *HELD_OUT]) == 0
    return {"root": root, "labelled": labelled, "test": synth_data["test"], "run": run}


@pytest.fixture(scope="module")
def refit(data):
    out = data["root"] / "refit"
    assert main(["refit", str(data["run"]), "--out", str(out), "--seed", "1", "--epochs", "2",
                 "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_refit_trains_on_every_label_and_keeps_the_held_out_calibration(data, refit, tmp_path,
                                                                        capsys):
    held = ModelCard.load(data["run"] / "bundle")
    card = ModelCard.load(refit / "bundle")
    assert held.training["label_counts"]["validation"] != {}  # the run held crops out
    assert card.training["label_counts"]["total"] == {"round": 30, "plate": 30, "pair": 30}
    assert card.refit is not None and card.refit["source_run"] == "held_out"
    assert card.refit["epochs"] == 2 and card.refit["schedule_epochs"] == 1000
    assert card.refit["label_counts"] == {"round": 30, "plate": 30, "pair": 30}
    assert card.refit["source_seed"] == 4 and card.seed == 1
    # the same schedule: steps, batch size; the last epoch kept, stopped inside the schedule
    assert card.training["steps_per_epoch"] == 2
    assert card.training["batch_size"] == held.training["batch_size"]
    assert card.training["best_epoch"] == 2
    assert card.training["stop_reason"] == "reached epoch 2 of the 1000-epoch schedule"
    # calibration and thresholds are the held-out run's, named as such
    assert held.calibration is not None and card.calibration is not None
    assert card.calibration.temperature == held.calibration.temperature
    assert "held-out run held_out" in card.calibration.fitted_on
    assert card.thresholds is not None and held.thresholds is not None
    assert card.thresholds.classes == held.thresholds.classes
    assert "held_out" in card.thresholds.set
    assert any(n.startswith("Refit:") for n in card.notes)
    metrics = json.loads((refit / "metrics.json").read_text())
    assert "validation_int8" not in metrics and metrics["training_int8"]["n"] == 90
    assert metrics["test_int8"]["n"] == 45
    assert len(json.loads((refit / "run.json").read_text())["history"]) == 2
    # the bundle runs in LiteRT and `evaluate` scores it as any bundle
    assert Classifier(refit / "bundle").classes == card.classes
    assert main(["evaluate", str(refit / "bundle"), "--test", str(data["test"]),
                 "--out", str(tmp_path / "eval")]) == 0
    assert "precision / recall at confidence" in capsys.readouterr().out


@pytest.mark.slow
def test_refit_records_its_recipe_and_refuses_to_refit_a_refit(data, refit, capsys):
    info = json.loads((data["run"] / "run.json").read_text())
    recipe = read_recipe(info, data["run"])
    assert recipe.request.labelled == (data["labelled"].resolve(),)
    assert recipe.request.loop.lr_decay and recipe.request.loop.max_epochs == 1000
    assert main(["refit", str(refit), "--out", str(data["root"] / "again"), "--quiet"]) == 2
    assert "itself a refit" in capsys.readouterr().err
    # a bundle, the run's or a copy; a file
    assert main(["refit", str(data["run"] / "bundle"), "--out", str(data["root"] / "b")]) == 2
    assert f"a model bundle, not a run folder; give the run folder that holds it, " \
           f"{data['run'].resolve()}" in capsys.readouterr().err
    copy = data["root"] / "copied_bundle"
    shutil.copytree(data["run"] / "bundle", copy)
    assert main(["refit", str(copy), "--out", str(data["root"] / "b")]) == 2
    assert "a bundle records no recipe" in capsys.readouterr().err
    assert main(["refit", str(data["run"] / "run.json"), "--out", str(data["root"] / "b")]) == 2
    assert "run.json: is a file, not a run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_refit_refuses_changed_moved_or_overlapping_data(data, tmp_path, capsys, caplog):
    run = data["run"]
    assert main(["refit", str(run), "--out", str(run / "inside"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out") and "overlaps" in err and "\n" not in err
    assert main(["refit", str(run), "--out", str(tmp_path / "r"), "--epochs", "1001"]) == 2
    assert "--epochs 1001" in capsys.readouterr().err
    # a changed crop: refused, naming the folder
    crop = next(p for p in sorted((data["labelled"] / "plate").iterdir()) if p.is_file())
    saved = crop.read_bytes()
    try:
        crop.write_bytes(saved + b"\0")
        assert main(["refit", str(run), "--out", str(tmp_path / "r"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert str(data["labelled"]) in err and "changed" in err and "\n" not in err
    finally:
        crop.write_bytes(saved)
    # moved data: the recorded folder is missing; --data-root finds it
    moved = tmp_path / "moved" / "data"
    shutil.copytree(data["labelled"], moved / "labelled")
    info = json.loads((run / "run.json").read_text())
    info[RECIPE]["labelled"] = [str(tmp_path / "gone" / "data" / "labelled")]
    edited = tmp_path / "edited"
    shutil.copytree(run, edited)
    (edited / "run.json").write_text(json.dumps(info))
    assert main(["refit", str(edited), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "--data-root" in capsys.readouterr().err
    recipe = read_recipe(info, edited, moved.parent)
    assert recipe.request.labelled == (moved.parent / "data" / "labelled",)
    # a --data-root that is no folder is refused; one that lacks a folder says so
    for root in (tmp_path / "nowhere", edited / "run.json"):
        assert main(["refit", str(run), "--out", str(tmp_path / "r"), "--data-root", str(root),
                     "--quiet"]) == 2
        assert f"--data-root {root}: not " in capsys.readouterr().err
    with caplog.at_level("WARNING"):
        assert read_recipe(json.loads((run / "run.json").read_text()), run,
                           tmp_path).request.labelled == (data["labelled"].resolve(),)
    assert f"labelled folder data/labelled is not under --data-root {tmp_path}" in caplog.text


@pytest.mark.slow
def test_refit_refuses_an_edited_training_summary_or_seed_by_name(data, tmp_path, capsys):
    info = json.loads((data["run"] / "run.json").read_text())
    edited = tmp_path / "edited"
    shutil.copytree(data["run"], edited)
    for field, value, says in (("batch_size", "yes", "training.batch_size: 'yes' is not a whole"),
                               ("batch_size", 0, "training.batch_size: 0 is not a whole"),
                               ("steps_per_epoch", -1, "training.steps_per_epoch: -1 is not"),
                               ("steps_per_epoch", None, "training.steps_per_epoch missing")):
        training = {k: v for k, v in info["training"].items() if k != field}
        if value is not None:
            training[field] = value
        (edited / "run.json").write_text(json.dumps({**info, "training": training}))
        assert main(["refit", str(edited), "--out", str(tmp_path / "r"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and str(edited / "run.json") in err and "\n" not in err, err
    for seed in ("-1", str(2**40)):
        assert main(["refit", str(data["run"]), "--out", str(tmp_path / "r"), "--seed", seed]) == 2
        assert f"--seed {seed}: give a whole number from 0 to 4294967295" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("field, value, says", [
    ("seed", True, "seed: True is not a whole number from 0 to 4294967295"),
    ("seed", -1, "seed: -1 is not a whole number"),
    ("crop_um", float("nan"), "crop_um: nan is not a number from 0"),
    ("balanced", "no", "balanced: 'no' is not true or false"),
    ("loop.learning_rate", -1, "loop.learning_rate: -1 is not a number from 0"),
    ("loop.learning_rate", "yes", "loop.learning_rate: 'yes' is not a number"),
    ("loop.max_epochs", 0, "loop.max_epochs: 0 is not a whole number from 1"),
    ("loop.max_epochs", True, "loop.max_epochs: True is not a whole number"),
    ("loop.steps_per_epoch", 2.5, "loop.steps_per_epoch: 2.5 is not a whole number"),
    ("loop.dropout", 7, "loop.dropout: 7 is not a number from 0 to 1"),
    ("loop.monitor", "loss", "loop.monitor: 'loss' is not"),
    ("labelled", "/etc", "labelled: '/etc' is not a list of folder paths"),
    ("labelled", [], "labelled: [] is not a list of folder paths"),
    ("classes", [1, 2], "classes: [1, 2] is not a list of class names"),
    ("init", 5, "init: 5 is not a path"),
])
def test_an_edited_recipe_is_refused_naming_its_field_and_value(tmp_path, field, value, says):
    (tmp_path / "labelled").mkdir()
    rec = recipe_of(TrainRequest(labelled=tmp_path / "labelled", out=tmp_path / "o"), {})
    section, _, key = field.rpartition(".")
    (rec[section] if section else rec)[key] = value
    with pytest.raises(TrainingDataError) as e:
        read_recipe({"classes": ["a", "b"], "method": "sgan", RECIPE: rec}, tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'run.json'}: recipe field {says}"), e.value


@pytest.mark.slow
def test_ctrl_c_ends_the_refit_after_the_epoch_and_keeps_it(data, tmp_path):
    out, log = tmp_path / "refit", tmp_path / "refit.log"
    proc = subprocess.Popen([sys.executable, "-m", "smartscope", "refit", str(data["run"]),
                             "--out", str(out)], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "epoch   2" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the refit did not start in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130, log.read_text()
    text = log.read_text()
    assert "interrupted (SIGINT) after epoch" in text and "Traceback" not in text, text
    assert "keeps the last epoch" in text and "the last epoch is kept" in text, text
    assert "best epoch" not in text and "epochs, the last kept" in text, text
    # what is trained is said before the first epoch; each epoch line says how many are planned
    assert ("refit of held_out: supervised-only on all 90 labelled crops (pair 30, plate 30, "
            "round 30), 1000 of its 1000-epoch schedule, 2 steps each, last epoch kept, seed 4"
            in text), text
    assert "epoch   1 of 1000 (2 steps)" in text, text
    card = ModelCard.load(out / "bundle")
    assert card.training["stop_reason"].startswith("interrupted (SIGINT)")
    assert 2 <= card.training["epochs"] == card.refit["epochs"] < 1000
    assert any(n.startswith("interrupted (SIGINT)") for n in card.notes)


def test_sigterm_outside_the_epochs_abandons_the_run_and_says_so(tmp_path, capsys):
    """Around train / transfer / refit: SIGTERM while the data is read or the bundle exported
    raises KeyboardInterrupt (the staging folder is removed, as for a second Ctrl-C) instead of
    killing the process; the command says the run was abandoned, exit 130."""
    import typer

    from smartscope.commands.train import abandoned_on_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(typer.Exit) as stop, abandoned_on_interrupt(tmp_path / "new"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs before this ends
    assert stop.value.exit_code == 130
    assert (f"interrupted: the run was abandoned; nothing was written to {tmp_path / 'new'}"
            in capsys.readouterr().err)
    assert signal.getsignal(signal.SIGTERM) is before


def _run_json(folder, **training) -> None:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "classes": ["a", "b"], "method": "supervised-only", "seed": 0,
        "training": {"stop_reason": "reached max_epochs 5", **training}}))


def test_refit_refuses_what_is_not_a_finished_run(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["refit", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "run.json missing" in err and "\n" not in err
    # being written (this process is alive) / left by a killed training (its process ended)
    (tmp_path / f".run.partial-{os.getpid()}").mkdir()
    assert main(["refit", str(tmp_path / f".run.partial-{os.getpid()}"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "still writing" in capsys.readouterr().err
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / f".run.partial-{done.stdout.strip()}"
    dead.mkdir()
    assert main(["refit", str(dead), "--out", str(tmp_path / "o")]) == 2
    assert "killed" in capsys.readouterr().err
    # killed after its training (in export): run.json and the checkpoint are there
    (dead / "run.json").write_text("{}")
    (dead / "discriminator.keras").write_bytes(b"")
    assert main(["refit", str(dead), "--out", str(tmp_path / "o")]) == 2
    assert "rename it (to run) and run `smartscope export` on it" in capsys.readouterr().err
    _run_json(tmp_path / "stopped",
              stop_reason="interrupted (SIGINT) after epoch 2; the best epoch so far is kept")
    assert main(["refit", str(tmp_path / "stopped"), "--out", str(tmp_path / "o")]) == 2
    assert "interrupted (SIGINT) after epoch 2" in capsys.readouterr().err
    _run_json(tmp_path / "unexported")
    assert main(["refit", str(tmp_path / "unexported"), "--out", str(tmp_path / "o")]) == 2
    assert "smartscope export" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_older_run_needs_its_data_root(tmp_path):
    info = {"classes": ["a", "b"], "method": "supervised-only", "seed": 2, "training": {
        "labelled_folder": "sets/train", "test_folder": "sets/test", "optimizer":
        "Adam lr 0.0006 beta_1 0.5, cosine decay to 0.05 x over 90 epochs", "epochs": 90,
        "best_epoch": 82, "steps_per_epoch": 40, "augmentation": True, "max_gamma": 1.6,
        "augmentation_settings": {"rotation_deg": 180.0, "zoom": 0.2, "flips": True},
        "model_size": {"name": "tiny"}, "crop_um": 20.64, "balanced_sampling": True}}
    with pytest.raises(TrainingDataError, match="--data-root"):
        read_recipe(info, tmp_path)
    (tmp_path / "sets" / "train").mkdir(parents=True)
    (tmp_path / "sets" / "test").mkdir()
    recipe = read_recipe(info, tmp_path, tmp_path)
    loop = recipe.request.loop
    assert (loop.learning_rate, loop.max_epochs, loop.lr_decay) == (6e-4, 90, True)
    assert (loop.rotation_deg, loop.zoom, loop.max_gamma) == (180.0, 0.2, 1.6)
    assert recipe.request.balanced and recipe.request.seed == 2
    assert recipe.request.test == (tmp_path / "sets" / "test",)
    assert default_epochs(info, 90, lr_decay=True) == 90
    assert default_epochs(info, 90, lr_decay=False) == 82
    with pytest.raises(TrainingDataError, match="SGAN"):
        read_recipe({**info, "method": "sgan"}, tmp_path, tmp_path)


def test_a_changed_unlabelled_pool_is_refused(synth_data, tmp_path):
    req = TrainRequest(labelled=synth_data["labelled"], unlabelled=synth_data["unlabelled"],
                       out=tmp_path / "o", unlabelled_count=60)
    recipe = Recipe(req, (folder_label(synth_data["labelled"]),), (), {})
    info = {"classes": ["round", "plate", "pair"], "training": {}}
    used = _load_checked(recipe, info, tmp_path)[1].unlabelled.sha256
    info["training"]["data_sha256"] = {"unlabelled_used": used}
    _load_checked(recipe, info, tmp_path)  # the same 60 crops: accepted
    info["training"]["data_sha256"] = {"unlabelled_used": "0" * 64}
    with pytest.raises(TrainingDataError, match="unlabelled folders .*unlabelled: their crops "
                                                "differ from those .* was trained on"):
        _load_checked(recipe, info, tmp_path)


def test_a_new_run_names_the_staging_folder_a_killed_one_left(tmp_path, caplog):
    from smartscope.train import runs

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    left = tmp_path / f".new.partial-{done.stdout.strip()}"
    left.mkdir()
    (left / "run.json").write_text("{}")
    (left / "discriminator.keras").write_bytes(b"")
    with runs.staged_out(tmp_path / "new", False) as stage:
        (stage / "run.json").write_text("{}")
    assert f"{left}: left by a run into new that was killed after its training" in caplog.text
    assert "`smartscope export`" in caplog.text and left.is_dir()  # named, never deleted
