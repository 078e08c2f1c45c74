"""``smartscope validate``: a one-line verdict, exit code 2 on any problem."""

from __future__ import annotations

from pathlib import Path

import yaml

from smartscope.classify.card import InputSpec, ModelCard
from smartscope.cli import main

REPO = Path(__file__).resolve().parents[2]
FIVE = ("interphase", "prometaphase", "metaphase", "anaphase", "apoptosis")


def _setup(tmp_path: Path, classes=FIVE, **changes) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    ModelCard(name="tiny", classes=classes,
              input=InputSpec(crop_um=41.28, normalisation="percentile-1-99.8-v1")).save(bundle)
    data = yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    data["model"]["bundle"] = "bundle"
    data.update(changes)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_ok(tmp_path, capsys):
    path = _setup(tmp_path)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "metaphase_zoom" in out and "centre_on_cell" in out


def test_validate_phase_not_in_model(tmp_path, capsys):
    path = _setup(tmp_path, classes=("interphase", "mitosis"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "triggers[0].phase" in err and "'metaphase'" in err
    assert "\n" not in err


def test_validate_missing_bundle(tmp_path, capsys):
    path = _setup(tmp_path)
    (tmp_path / "bundle" / "model_card.json").unlink()
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.bundle" in err and "model card not found" in err


def test_validate_typo(tmp_path, capsys):
    path = _setup(tmp_path, on_eror="stop")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'on_eror'" in err and "did you mean 'on_error'" in err and "Traceback" not in err
