"""Protocol files from the fault review (defects 7, 8, 9, 10, 11): physical bounds on every
time, size and count; alias bombs and duplicate keys refused; output name templates checked;
``validate`` loads the model bundle as ``run`` does. All through ``smartscope validate``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from smartscope.yamlsafe import MAX_NODES, YamlInputError, load_yaml

from .conftest import CliResult, base_protocol, copy_bundle, write_protocol


def _one_line(res: CliResult, *words: str) -> None:
    assert res.code == 2, res.stdout + res.stderr
    assert len(res.error_lines) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def _validate(cli, tmp_path: Path, bundle: Path, data: dict | str) -> CliResult:
    copy_bundle(bundle, tmp_path / "bundle")
    return cli("validate", write_protocol(tmp_path, data))


def _set(data: dict, path: str, value: object) -> dict:
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for p in parents:
        node = node[p]
    node[last] = value
    return data


BOUNDS = [  # (dotted field, absurd value, words expected)
    ("screening.interval_s", 1e300, "366 days"),
    ("screening.duration_s", 1e12, "366 days"),
    ("screening.exposure_ms", 1e9, "exposure_ms"),
    ("screening.n_timepoints", 10**12, "1e+06"),
    ("triggers.0.cooldown_s", 1e20, "366 days"),
    ("triggers.0.min_cells", 10**9, "1e+06"),
    ("triggers.0.consecutive_frames", 10**9, "1e+06"),
    ("triggers.0.actions.1.n_frames", 10**9, "n_frames"),
    ("triggers.0.actions.1.interval_s", 1e300, "366 days"),
    ("microscope.stall_timeout_s", 1e300, "stall_timeout_s"),
    ("microscope.time_scale", 1e300, "1e+06"),
    ("microscope.seed", -3, "seed"),
    ("microscope.objectives.60x.parfocal_z_offset_um", 1e30, "200"),  # the 200 um typo bound
    ("screening.interval_s", float("inf"), "finite"),
    ("screening.exposure_ms", float("nan"), "finite"),
]


@pytest.mark.parametrize(("field", "value", "words"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_absurd_numbers_are_refused_at_validate(cli, tiny_bundle, tmp_path, field, value, words):
    res = _validate(cli, tmp_path, tiny_bundle, _set(base_protocol("bundle"), field, value))
    _one_line(res, "protocol.yaml", field.split(".")[-1], words)


def test_far_positions_and_spacings_are_refused(cli, tiny_bundle, tmp_path):
    data = base_protocol("bundle")
    data["screening"]["positions"] = [{"x_um": 1e300, "y_um": 0}]
    _one_line(_validate(cli, tmp_path, tiny_bundle, data), "positions[0].x_um", "1 m")


BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]"
       for i in range(8)]) + "\n"


def test_an_alias_bomb_is_refused_before_any_value_is_built(cli, tiny_bundle, tmp_path):
    assert len(BOMB) < 600  # 9**9 = 387 million values if expanded
    t0 = time.perf_counter()
    res = _validate(cli, tmp_path, tiny_bundle, BOMB)
    assert time.perf_counter() - t0 < 10  # expanded it takes minutes and gigabytes
    _one_line(res, "protocol.yaml", "aliases", str(MAX_NODES))


def test_ordinary_aliases_and_merge_keys_still_work():
    data = load_yaml("base: &b {exposure_ms: 5, channel: FITC}\n"
                     "a: {<<: *b, channel: DAPI}\nb: [*b, *b]\n")
    assert data["a"] == {"exposure_ms": 5, "channel": "DAPI"}
    assert data["b"] == [{"exposure_ms": 5, "channel": "FITC"}] * 2


@pytest.mark.parametrize("dup", ["exposure_ms", "screening"])
def test_duplicate_keys_are_refused_naming_both_lines(cli, tiny_bundle, tmp_path, dup):
    import yaml

    text = yaml.safe_dump(base_protocol("bundle"), sort_keys=False)
    lines = text.splitlines()
    if dup == "exposure_ms":
        first = next(i for i, ln in enumerate(lines) if ln.strip().startswith("exposure_ms:"))
        lines.insert(first + 1, lines[first].replace("5", "500"))
        where = (f"line {first + 2}", f"line {first + 1}")
    else:
        first = next(i for i, ln in enumerate(lines) if ln.startswith("screening:"))
        lines += ["screening:", "  objective: 60x"]
        where = (f"line {len(lines) - 1}", f"line {first + 1}")
    res = _validate(cli, tmp_path, tiny_bundle, "\n".join(lines) + "\n")
    _one_line(res, "protocol.yaml", f"'{dup}'", "repeated", *where)


def test_load_yaml_refuses_duplicates_in_nested_lists():
    with pytest.raises(YamlInputError, match="line 3.*line 2"):
        load_yaml("items:\n  - {a: 1,\n     a: 2}\n")


@pytest.mark.parametrize(("name", "words"), [
    ("{protocol}_{operator}", "{operator}"),
    ("{protocol_{date}", "name template"),
    ("run}", "name template"),
])
def test_output_name_templates_are_checked_at_validate(cli, tiny_bundle, tmp_path, name, words):
    data = base_protocol("bundle")
    data["output"] = {"name": name}
    _one_line(_validate(cli, tmp_path, tiny_bundle, data), "output.name", words)


def test_a_literal_brace_in_the_output_name_is_fine(cli, tiny_bundle, tmp_path):
    data = base_protocol("bundle")
    data["output"] = {"name": "{protocol}_{{A}}"}
    res = _validate(cli, tmp_path, tiny_bundle, data)
    assert res.code == 0, res.stderr


def test_validate_loads_the_model(cli, tiny_bundle, tmp_path):
    copy_bundle(tiny_bundle, tmp_path / "bundle")
    (tmp_path / "bundle" / "model.tflite").write_bytes(b"\x00" * 64)
    res = cli("validate", write_protocol(tmp_path, base_protocol("bundle")))
    _one_line(res, "model.bundle", "model.tflite")


def test_validate_checks_the_card_against_the_model(cli, tiny_bundle, tmp_path):
    copy_bundle(tiny_bundle, tmp_path / "bundle",
                {"classes": ["interphase", "metaphase", "anaphase", "telophase"]})
    res = cli("validate", write_protocol(tmp_path, base_protocol("bundle")))
    _one_line(res, "model.bundle", "4")
