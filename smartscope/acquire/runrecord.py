"""What a run leaves about itself: its ``RunSummary`` (how it ended, what the hook did) and
``run.json`` (protocol, microscope, package versions, model card hash, summary)."""

from __future__ import annotations

import datetime as _dt
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from smartscope.acquire.sinks import file_sha256, package_versions, write_json_atomic
from smartscope.protocol import Protocol

if TYPE_CHECKING:
    from smartscope.acquire.connect import ScopeHandle
    from smartscope.acquire.hook import SmartHook


RunStatus = Literal["running", "completed", "failed", "interrupted", "stopped_on_error"]
"""How a run ended (``running`` until it does)."""


@dataclass
class RunSummary:
    """What a run did (also stored in ``run.json`` under ``summary``)."""

    out_dir: str
    status: RunStatus = "running"
    frames: int = 0
    screening_frames: int = 0
    followup_frames: int = 0
    triggers_fired: int = 0
    errors: int = 0
    duration_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_budget_ms: float | None = None
    frames_over_budget: int = 0
    dataset: str | None = None
    """The screening data set."""
    followup_datasets: list[str] = field(default_factory=list)
    """The follow-up data sets, relative to the run folder, in the order they were written."""
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    event_capture: dict[str, Any] | None = None
    event_capture_lines: list[str] = field(default_factory=list)
    late_starts: int = 0
    """Frames that started late because the work before them did not fit the interval."""
    restored: dict[str, Any] = field(default_factory=dict)
    """The screening objective, channel and focus put back at the end (or the error)."""


def fill_summary(summary: RunSummary, hook: SmartHook, status: RunStatus) -> None:
    """Fill ``summary`` with what the hook did and how the run ended."""
    p = hook.progress()
    lat = hook.latencies_ms
    summary.status = status
    summary.frames = p.frames
    summary.screening_frames = p.screening_frames
    summary.followup_frames = p.followup_frames
    summary.triggers_fired = p.triggers_fired
    summary.late_starts = hook.planner.late_starts
    summary.errors = p.errors
    summary.latency_budget_ms = hook.latency_budget_ms
    summary.frames_over_budget = p.over_budget
    summary.followup_datasets = hook.layout.datasets()
    if lat:
        ordered = sorted(lat)
        summary.latency_ms = {
            "median": round(statistics.median(lat), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "max": round(ordered[-1], 2),
        }


def write_run_json(out_dir: Path, summary: RunSummary, *, protocol: Protocol, source: str,
                   classifier: Any, simulated: bool, scope: ScopeHandle | None,
                   started: bool) -> None:
    """``run.json``: the protocol, the microscope, package versions, the model's hashes and the
    summary (``started`` on the first write; later writes keep its start time)."""
    card = getattr(classifier, "card", None)
    bundle = Path(protocol.model.bundle)
    data = {
        "protocol_file": source,
        "protocol": protocol.model_dump(mode="json"),
        "simulated": simulated,
        "microscope": scope.kind if scope is not None else None,
        "scope_info": scope.info if scope is not None else {},
        "started": _dt.datetime.now().isoformat(timespec="seconds") if started else None,
        "packages": package_versions(),
        "model": {
            "bundle": str(bundle),
            "name": getattr(card, "name", None),
            "classes": list(getattr(classifier, "classes", ())),
            "card_sha256": file_sha256(bundle / "model_card.json"),
            "model_sha256": file_sha256(bundle / "model.tflite"),
        },
        "summary": asdict(summary),
    }
    path = out_dir / "run.json"
    if not started and path.exists():
        import json

        data["started"] = json.loads(path.read_text()).get("started")
    write_json_atomic(path, data)
