"""Library functions name their arguments in messages; the command line passes its flags."""

from __future__ import annotations

import pytest

from smartscope.errors import ImageError, OutputError


def test_a_training_run_folder_is_named_as_the_caller_names_it(tmp_path):
    from smartscope.train.runs import INFO_JSON, prepare_out

    out = tmp_path / "run"
    out.mkdir()
    (out / INFO_JSON).write_text("{}")
    with pytest.raises(OutputError) as e:
        prepare_out(out, overwrite=False)
    assert str(e.value) == (f"out {out}: already holds a training run; choose another out or "
                            "pass overwrite=True")
    with pytest.raises(OutputError) as e:
        prepare_out(out, overwrite=False, option="--out", overwrite_option="--overwrite")
    assert str(e.value) == (f"--out {out}: already holds a training run; choose another --out "
                            "or pass --overwrite")


def test_a_crop_pool_folder_is_named_as_the_caller_names_it(tmp_path):
    from smartscope.vision.cut import run_crops

    out = tmp_path / "pool"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    frame = tmp_path / "f.npy"
    frame.write_bytes(b"")
    for kwargs, name in (({}, "out"), ({"out_option": "--out"}, "--out")):
        with pytest.raises(ImageError) as e:
            run_crops([frame], 0.645, out, **kwargs)
        assert str(e.value).startswith(f"{name} {out}: holds files that `smartscope crops`")
    assert (out / "notes.txt").read_text() == "mine"
