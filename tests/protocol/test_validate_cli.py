"""``smartscope validate``: a one-line verdict, exit code 2 on any problem."""

from __future__ import annotations

from pathlib import Path

import yaml

from smartscope.cli import main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "hela_h2b_5class"


def _setup(tmp_path: Path, phase: str | None = None, **changes) -> Path:
    """The example protocol with a copy of the shipped bundle (validate loads the model)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for f in SHIPPED.iterdir():
        (bundle / f.name).write_bytes(f.read_bytes())
    data = yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    data["model"]["bundle"] = "bundle"
    if phase is not None:
        data["triggers"][0]["phase"] = phase
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
    path = _setup(tmp_path, phase="mitosis")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "triggers[0].phase" in err and "'mitosis'" in err
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


def test_validate_several_protocols_checks_each_and_fails_if_any_fails(tmp_path, capsys):
    good = sorted(str(p) for p in (REPO / "acquisitions").glob("*.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nscreening: {objektive: 10x}\n")
    assert main(["validate", *good]) == 0
    out = capsys.readouterr().out
    assert out.count("ok: ") == len(good) >= 2
    assert main(["validate", good[0], str(bad), good[1]]) == 2
    res = capsys.readouterr()
    assert res.out.count("ok: ") == 2 and f"error: {bad}" in res.err
    assert "1 of 3 protocols have errors" in res.err
