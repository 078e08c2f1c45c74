"""``report.html``: one self-contained page about a run (images embedded, no network)."""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from smartscope.outputs import atomic_file, check_file_target
from smartscope.report.images import ImageStore
from smartscope.report.load import RunRecords, load_run
from smartscope.report.plots import latency_histogram, phase_timeline
from smartscope.report.triggers import Thumb, TriggerView, trigger_views

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
#: marks a page this module wrote (only such a page is replaced)
GENERATOR = "<meta name='generator' content='smartscope report'>"
#: decision events listed under "refusals and errors"
PROBLEM_EVENTS = ("refused", "error", "abandoned", "not_confirmed", "interrupted")
#: at most this many rows in the full decision log
MAX_LOG_ROWS = 2000
#: folders of data sets linked in the file list (a run with many follow-ups has one each)
MAX_DATASET_LINKS = 50

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}
.facts td:first-child{font-weight:600;white-space:nowrap}
.trigger{border:1px solid #ccc;border-radius:6px;padding:.6em .8em;margin:1em 0;display:flex;
gap:1em;flex-wrap:wrap}.trigger h3{margin:.1em 0 .4em;font-size:1.05em}
figure{margin:0;max-width:230px}figcaption{font-size:.8em;color:#555}
.missing{width:220px;height:120px;background:#eee;display:flex;align-items:center;
justify-content:center;font-size:.8em;color:#666;text-align:center;padding:.3em}
.bad{color:#b00020;font-weight:600}.ok{color:#006d2c;font-weight:600}.note{color:#666;
font-size:.9em}
"""
# records image decoding and script errors on the page (for a browser or a test to read back)
_JS = """
window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(
String(e.message||e.type))},true);window.addEventListener('load',function(){var im=document.images,
ok=0;for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0){ok++;}}
document.body.setAttribute('data-images-loaded',ok+'/'+im.length);
document.body.setAttribute('data-errors',String(window.__errors.length));});
"""


def write_report(folder: str | Path, max_thumbnails: int = 200) -> Path:
    """Write ``report.html`` into a run folder and return its path.

    Raises
    ------
    RunFolderError
        If the folder is not a run.
    OutputError
        If ``report.html`` there was not written by smartscope, or cannot be written.
    """
    t0 = time.perf_counter()
    rec = load_run(folder)
    with ImageStore(rec.folder) as store:
        page = render(rec, store, max_thumbnails=max_thumbnails)
    out = check_file_target(rec.folder / REPORT_NAME, option="RUN_DIR", replaceable=_is_ours)
    with atomic_file(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report written: %s (%.0f kB, %.2f s)", out, out.stat().st_size / 1024,
             time.perf_counter() - t0)
    return out


def _is_ours(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return GENERATOR in f.read(400)
    except OSError:
        return False


def render(rec: RunRecords, store: ImageStore, max_thumbnails: int = 200) -> str:
    """The report page of a run as an HTML string."""
    views = trigger_views(rec, store, max_thumbnails=max_thumbnails)
    title = f"smartscope run {rec.folder.name}"
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{GENERATOR}",
        f"<title>{_e(title)}</title><style>{_CSS}</style><script>{_JS}</script></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='note'>report written {_dt.datetime.now().isoformat(timespec='seconds')}"
        f" from the run's records; every image is embedded, the page needs no network.</p>",
        _summary(rec, views),
        _protocol(rec),
        _timeline(rec, views),
        _triggers(views, rec, max_thumbnails),
        _problems(rec),
        _latency(rec),
        _capture(rec),
        _files(rec, store),
        _decision_log(rec),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


# --- sections -----------------------------------------------------------------------------------

def _summary(rec: RunRecords, views: Sequence[TriggerView]) -> str:
    s = rec.run.get("summary", {})
    status = rec.status
    cls = "ok" if status == "completed" else "bad"
    n_screen = sum(1 for f in rec.frames.values() if f.mode != "follow")
    rows = [
        ("status", f"<span class='{cls}'>{_e(status)}</span>"
         + (f" &mdash; {_e(s['error'])}" if s.get("error") else "")),
        ("started", _e(rec.run.get("started") or "not recorded")),
        ("duration", f"{s['duration_s']:.1f} s" if s.get("duration_s") else "not recorded"),
        ("microscope", _e(_microscope(rec.run))),
        ("frames", _e(f"{s['frames']} ({s.get('screening_frames')} screening, "
                      f"{s.get('followup_frames')} follow-up)") if "frames" in s
         else _e(f"{len(rec.frames)} with records ({n_screen} screening)")),
        ("triggers fired", str(len(views))),
        ("errors", str(sum(1 for d in rec.decisions if d.get("event") == "error"))),
        ("nuclei classified", f"{rec.cell_rows:,}"),
    ]
    lat = s.get("latency_ms") or {}
    if lat:
        rows.append(("hook latency", _e(", ".join(f"{k} {v:.0f} ms" for k, v in lat.items()))))
    if rec.skipped_lines:
        rows.append(("unreadable lines", f"{rec.skipped_lines} (a run that ended abruptly "
                     "leaves a torn last line; skipped)"))
    return "<h2>Summary</h2>" + _facts(rows)


def _microscope(run: Mapping[str, Any]) -> str:
    kind = run.get("microscope") or run.get("protocol", {}).get("microscope", {}).get("type")
    if not kind:
        return "not recorded"
    simulated = run.get("simulated") and kind != "simulated"
    return f"{kind}{' (simulated)' if simulated else ''}"


def _protocol(rec: RunRecords) -> str:
    p = rec.run.get("protocol")
    m = rec.run.get("model", {})
    if not p:
        return ("<h2>Protocol and model</h2><p class='note'>No run.json: the protocol and model "
                "were not recorded (a hook in a user's own script writes only the cell and "
                "decision records).</p>")
    sc = p.get("screening", {})
    positions = sc.get("positions") or []
    end = (f"{sc['n_timepoints']} time points" if sc.get("n_timepoints")
           else f"{sc.get('duration_s')} s")
    rows = [
        ("protocol file", _e(rec.run.get("protocol_file", ""))),
        ("screening", _e(f"{sc.get('objective')} / {sc.get('channel')}, "
                         f"{sc.get('exposure_ms')} ms, every {sc.get('interval_s')} s for {end}, "
                         f"{len(positions) or 1} position(s)")),
        ("detection", _e(f"nucleus diameter {p.get('detection', {}).get('diameter_um')} um")),
        ("model", _e(f"{m.get('name') or Path(str(m.get('bundle', ''))).name}: "
                     f"{', '.join(m.get('classes') or rec.classes)}")
         + (f" <span class='note'>(model sha256 {_e(str(m['model_sha256'])[:12])}&hellip;)</span>"
            if m.get("model_sha256") else "")),
        ("on error", _e(p.get("on_error", ""))),
    ]
    for t in p.get("triggers", []):
        phase = t.get("phase")
        phases = "/".join(phase) if isinstance(phase, list) else str(phase)
        acts = " &rarr; ".join(_e(_action(a)) for a in t.get("actions", []))
        rows.append((f"trigger {_e(t.get('name'))}",
                     _e(f"{phases} at confidence >= {t.get('min_confidence')}"
                        + (" (mean over the cell's frames)" if t.get("evidence") == "mean"
                           else "")
                        + f", {t.get('consecutive_frames', 1)} frame(s) in a row: ") + acts))
    return "<h2>Protocol and model</h2>" + _facts(rows)


def _action(a: Mapping[str, Any]) -> str:
    extra = ", ".join(f"{k} {v}" for k, v in a.items()
                      if k != "type" and v not in (None, [], {}, "") and k in _SHOWN_ACTION_KEYS)
    return f"{a.get('type')}" + (f" ({extra})" if extra else "")


_SHOWN_ACTION_KEYS = ("objective", "preset", "exposure_ms", "interval_s", "min_frames",
                      "max_frames", "range_um", "step_um", "n_frames", "phase")


def _timeline(rec: RunRecords, views: Sequence[TriggerView]) -> str:
    times = [float(v.record["time_s"]) for v in views if v.record.get("time_s") is not None]
    uri = phase_timeline(rec.phase_counts, rec.frames, rec.classes, times)
    if uri is None:
        return "<h2>Phases over time</h2><p class='note'>No screening frame was classified.</p>"
    return (f"<h2>Phases over time</h2><img alt='nuclei per phase per screening frame' "
            f"src='{uri}' style='max-width:100%'>")


def _triggers(views: Sequence[TriggerView], rec: RunRecords, max_thumbnails: int) -> str:
    if not views:
        return "<h2>Triggers</h2><p id='no-triggers'>No trigger fired in this run.</p>"
    out = [f"<h2>Triggers ({len(views)})</h2>"]
    if len(views) > max_thumbnails:
        out.append(f"<p class='note'>Thumbnails for the first {max_thumbnails} only.</p>")
    for v in views:
        out.append(_trigger_card(v, rec))
    return "\n".join(out)


def _trigger_card(v: TriggerView, rec: RunRecords) -> str:
    d, c = v.record, v.cell
    target = d.get("target") or {}
    where = (f"stage x {c['x_um']:.1f}, y {c['y_um']:.1f} um" if "x_um" in c else "")
    rows = [
        ("time", f"{float(d.get('time_s', 0)):.2f} s (frame {_e(d.get('frame'))})"),
        ("position", _e(f"{d.get('position', '')}; {where}".strip("; "))),
        ("track", _e(v.track if v.track not in (None, "") else "not recorded")),
        ("phase", _e(f"{c.get('phase', '')} ({len(d.get('cells') or [])} matched cell(s))")),
        ("confidence", _e(f"{float(c['confidence']):.3f}" if "confidence" in c else "")),
        *([("evidence", _e(f"mean {float(d['evidence']['mean']):.3f} over "
                           f"{d['evidence'].get('frames')} frames"))]
          if isinstance(d.get("evidence"), dict) and "mean" in d["evidence"] else []),
        ("actions", " &rarr; ".join(_e(_action(a)) for a in d.get("actions", []))),
        ("hook latency", _e(f"{d['latency_ms']:.0f} ms" if "latency_ms" in d else "")),
    ]
    if target:
        rows.append(("centred on", _e(f"{target.get('objective')} at x {target.get('x_um', 0):.1f}"
                                      f", y {target.get('y_um', 0):.1f} um")))
    if d.get("refused"):
        rows.append(("refused", f"<span class='bad'>{_e(d['refused'])}</span>"))
    for o in v.outcomes:
        detail = ", ".join(f"{k} {o[k]}" for k in ("reason", "frames", "action") if o.get(k))
        rows.append((_e(o.get("event")), _e(f"at {float(o.get('time_s', 0)):.2f} s"
                                            + (f": {detail}" if detail else ""))))
    return (f"<div class='trigger' id='trigger-{v.number}' data-frame='{_e(d.get('frame'))}'>"
            f"<div><h3>#{v.number} {_e(d.get('trigger', ''))}</h3>{_facts(rows)}</div>"
            f"{_figure(v.screening)}{_figure(v.followup)}</div>")


def _figure(t: Thumb | None) -> str:
    if t is None:
        return ""
    if t.uri is None:
        return (f"<figure><div class='missing'>{_e(t.missing)}</div>"
                f"<figcaption>{_e(t.caption)}</figcaption></figure>")
    return (f"<figure><img src='{t.uri}' alt='{_e(t.caption)}'>"
            f"<figcaption>{_e(t.caption)}</figcaption></figure>")


def _problems(rec: RunRecords) -> str:
    rows = []
    for d in rec.decisions:
        ev = d.get("event")
        if ev in PROBLEM_EVENTS or (ev == "trigger" and d.get("refused")):
            why = d.get("error") or d.get("reason") or d.get("refused") or ""
            rows.append([_e(ev if ev != "trigger" else "trigger refused"), _e(d.get("frame")),
                         _e(d.get("time_s", "")), _e(d.get("trigger", d.get("where", ""))),
                         _e(why)])
    if not rows:
        return "<h2>Refusals and errors</h2><p id='no-problems'>None.</p>"
    return (f"<h2>Refusals and errors ({len(rows)})</h2>"
            + _table(["event", "frame", "time (s)", "trigger / where", "why"], rows))


def _latency(rec: RunRecords) -> str:
    lat = [f.latency_ms for f in rec.frames.values() if f.latency_ms is not None]
    what = "images (every image the hook decided on)"
    if not lat:
        lat = [float(d["latency_ms"]) for d in rec.decisions
               if isinstance(d.get("latency_ms"), int | float)]
        what = "images with a decision (this run kept no per-image latency)"
    uri = latency_histogram(lat, what)
    if uri is None:
        return "<h2>Hook latency</h2><p class='note'>No latency recorded.</p>"
    return (f"<h2>Hook latency</h2><p class='note'>{len(lat)} {_e(what)}</p>"
            f"<img alt='hook latency histogram' src='{uri}'>")


def capture_scores(run: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Event-capture figures of a simulated or replayed run (trigger -> figures), as the run
    writes them in ``run.json`` under ``summary.event_capture``; None when it has none."""
    summary = run.get("summary")
    scores = summary.get("event_capture") if isinstance(summary, Mapping) else None
    if not isinstance(scores, Mapping) or not scores:
        return None
    return {str(k): dict(v) for k, v in scores.items() if isinstance(v, Mapping)} or None


def _capture(rec: RunRecords) -> str:
    scores = capture_scores(rec.run)
    if not scores:
        return ""
    rows = []
    for name, s in scores.items():
        rows.append([_e(name), _e(s.get("triggers", "")),
                     _pct(s.get("precision"), s.get("right"), s.get("triggers")),
                     _pct(s.get("followup_precision"), s.get("followups_right"),
                          s.get("followups")),
                     _pct(s.get("recall"), s.get("caught"), s.get("episodes")),
                     _e(f"{s['wrong_time_s']:.1f} s" if "wrong_time_s" in s else "")])
    return ("<h2>Event capture against the ground truth</h2><p class='note'>Precision: triggers "
            "on a cell truly in a target phase; recall: target-phase episodes in the screened "
            "fields that got a follow-up in time.</p>"
            + _table(["trigger", "triggers", "precision", "follow-up precision", "recall",
                      "time on wrong cells"], rows))


def _pct(v: Any, num: Any, den: Any) -> str:
    if v is None:
        return "n/a"
    frac = f" ({num}/{den})" if num is not None and den is not None else ""
    return _e(f"{100 * float(v):.0f} %{frac}")


def _files(rec: RunRecords, store: ImageStore) -> str:
    items = []
    groups: dict[str, list[str]] = {}
    for ds in store.datasets:  # a follow-up's data sets are listed under its folder
        rel = Path(os.path.relpath(ds, rec.folder)).as_posix()
        top, _, rest = rel.partition("/")
        groups.setdefault(top, []).append(rest)
    for n, (top, parts) in enumerate(groups.items()):
        if n == MAX_DATASET_LINKS:
            items.append(f"<li>... and {len(groups) - n} more folders of NDTiff data sets</li>")
            break
        what = ("NDTiff data set" if parts == [""] else
                f"NDTiff data sets: {', '.join(p + '/' for p in parts)}")
        items.append(f"<li><a href='{_e(top)}/'>{_e(top)}/</a> ({_e(what)})</li>")
    for name, what in (("cells.csv", "every classified nucleus"),
                       ("frames.csv", "every image: data set, axes, hook latency"),
                       ("decisions.jsonl", "every decision"),
                       ("run.json", "protocol, versions, summary")):
        if (rec.folder / name).is_file():
            items.append(f"<li><a href='{name}'>{name}</a> ({what})</li>")
    for tif in sorted((rec.folder / "tiff").glob("*.tif")):
        items.append(f"<li><a href='tiff/{_e(tif.name)}'>tiff/{_e(tif.name)}</a> (ImageJ "
                     "hyperstack for Fiji / napari)</li>")
    if store.error:
        items.append(f"<li class='note'>{_e(store.error)}</li>")
    return "<h2>Files</h2><ul>" + "".join(items) + "</ul>"


def _decision_log(rec: RunRecords) -> str:
    if not rec.decisions:
        return ""
    keys = ("event", "frame", "time_s", "position", "trigger", "followup", "reason", "latency_ms")
    rows = [[_e(d.get(k, "")) for k in keys] for d in rec.decisions[:MAX_LOG_ROWS]]
    more = len(rec.decisions) - len(rows)
    return (f"<h2>Decision log</h2><details><summary>{len(rec.decisions)} decisions"
            f"{f' (first {MAX_LOG_ROWS} shown)' if more > 0 else ''}</summary>"
            + _table(list(keys), rows) + "</details>")


# --- html helpers -------------------------------------------------------------------------------

def _e(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        v = json.dumps(v)
    return html.escape(str(v), quote=True)


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    return ("<table class='facts'>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>"
                                              for k, v in rows) + "</table>")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
