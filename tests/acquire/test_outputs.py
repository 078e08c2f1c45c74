"""Run outputs: folder naming, cells.csv, decisions.jsonl, run.json writing."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import yaml

from smartscope.acquire import output_dir
from smartscope.acquire.sinks import CellsCsv, DecisionsJsonl, package_versions, write_json_atomic
from smartscope.protocol import parse_protocol

REPO = Path(__file__).resolve().parents[2]


def test_output_dir_template():
    data = yaml.safe_load((REPO / "acquisitions" / "mitosis_zoom.yaml").read_text())
    data["output"] = {"directory": "out", "name": "{protocol}_s{seed}_{date}_{time}"}
    proto = parse_protocol(data)
    path = output_dir(proto, dt.datetime(2026, 1, 2, 3, 4, 5), "mitosis_zoom")
    assert path == Path("out") / "mitosis_zoom_s3_20260102_030405"


def test_cells_csv_rows_are_on_disk_at_once(tmp_path):
    sink = CellsCsv(tmp_path / "cells.csv", ("a", "b"))
    sink.write([{"frame": 0, "time_s": 0.5, "y": 1.0, "x": 2.0, "phase": "a",
                 "confidence": 0.9, "probabilities": {"a": 0.9, "b": 0.1}},
                {"frame": 0, "time_s": 0.5, "y": 3.0, "x": 4.0, "phase": "b",
                 "confidence": 0.6, "probabilities": [0.4, 0.6]},
                {"frame": 1, "time_s": 1.0, "y": 5.0, "x": 6.0, "phase": "b",
                 "confidence": 0.6, "probabilities": None}])
    rows = list(csv.DictReader((tmp_path / "cells.csv").open()))  # before close: flushed
    assert [r["p_b"] for r in rows] == ["0.1", "0.6", ""]
    assert rows[1]["phase"] == "b" and rows[0]["y"] == "1"
    sink.close()
    sink.close()


def test_decisions_jsonl_flushed_and_numpy_safe(tmp_path):
    import numpy as np

    sink = DecisionsJsonl(tmp_path / "d.jsonl")
    sink.write({"event": "trigger", "confidence": np.float32(0.5), "xy": np.array([1, 2])})
    rec = json.loads((tmp_path / "d.jsonl").read_text())
    assert rec == {"event": "trigger", "confidence": 0.5, "xy": [1, 2]}
    sink.close()


def test_run_json_atomic(tmp_path):
    write_json_atomic(tmp_path / "run.json", {"a": 1, "path": tmp_path})
    assert json.loads((tmp_path / "run.json").read_text())["a"] == 1
    assert not list(tmp_path.glob("*.tmp"))
    versions = package_versions()
    assert versions["pydantic"] and versions["python"]
