"""Each trigger of a run with what became of it and its two thumbnails: the triggering cell in
its screening frame (box) and the first follow-up frame (centre marked)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from smartscope.report.images import ImageRef, ImageStore, cell_crop, png_thumbnail
from smartscope.report.load import FollowCell, RunRecords

log = logging.getLogger(__name__)

#: decision events that end or refuse a follow-up
OUTCOME_EVENTS = ("interval_end", "return", "stop", "abandoned", "refused", "not_confirmed",
                  "confirmed")
#: default nucleus diameter when the protocol is not recorded, um
DEFAULT_DIAMETER_UM = 18.0


@dataclass
class Thumb:
    """One thumbnail (``uri`` is a PNG data URI, or None with ``missing`` saying why)."""

    uri: str | None
    caption: str
    missing: str = ""


@dataclass
class TriggerView:
    """A trigger decision and everything the report shows about it."""

    number: int
    record: dict[str, Any]
    cell: dict[str, Any]
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    screening: Thumb | None = None
    followup: Thumb | None = None
    followup_frame: int | None = None

    @property
    def track(self) -> Any:
        return self.cell.get("track", "")


def trigger_views(rec: RunRecords, store: ImageStore, max_thumbnails: int = 200) -> list[
        TriggerView]:
    """Every ``trigger`` decision in order, with outcomes and (for the first
    ``max_thumbnails``) thumbnails."""
    diameter_um = float(rec.run.get("protocol", {}).get("detection", {}).get("diameter_um")
                        or DEFAULT_DIAMETER_UM)
    views = []
    triggers = [d for d in rec.decisions if d.get("event") == "trigger"]
    for n, d in enumerate(triggers, start=1):
        v = TriggerView(number=n, record=d, cell=_chosen_cell(d))
        fu = d.get("followup")
        v.outcomes = [o for o in rec.decisions if o is not d and fu is not None
                      and o.get("followup") == fu and o.get("event") in OUTCOME_EVENTS]
        v.followup_frame = _first_followup_frame(rec, d)
        if n <= max_thumbnails:
            try:
                v.screening = _screening_thumb(rec, store, d, v.cell, diameter_um)
                if d.get("refused") is None:
                    v.followup = _followup_thumb(rec, store, d, v.followup_frame, diameter_um)
            except Exception:  # a broken image must not cost the rest of the report
                log.exception("thumbnails of trigger %d failed", n)
        views.append(v)
    return views


def _chosen_cell(d: dict[str, Any]) -> dict[str, Any]:
    """The followed cell (``cell``), else the matched cell nearest the centring target, else the
    first matched."""
    if isinstance(d.get("cell"), dict) and "y_px" in d["cell"]:
        return dict(d["cell"])
    cells = d.get("cells") or []
    target = (d.get("target") or {}).get("cell") or {}
    if target and cells:
        return min(cells, key=lambda c: (c.get("y_px", 0) - target.get("y_px", 0)) ** 2
                   + (c.get("x_px", 0) - target.get("x_px", 0)) ** 2)
    return cells[0] if cells else {}


def _first_followup_frame(rec: RunRecords, d: dict[str, Any]) -> int | None:
    fu, frame = d.get("followup"), d.get("frame")
    if fu is None or frame is None:
        return None
    later = [i for i, f in rec.frames.items() if i > frame and f.followup == fu
             and f.mode == "follow" and (f.axes is None or int(f.axes.get("z", 0) or 0) == 0)]
    return min(later) if later else None


def _ref(rec: RunRecords, store: ImageStore, frame: int | None, time_s: float | None,
         mode: str) -> ImageRef | None:
    info = rec.frames.get(frame) if frame is not None else None
    if info is not None and info.axes is not None:
        ds = rec.folder / info.dataset if info.dataset else (
            store.datasets[0] if len(store.datasets) == 1 else None)
        if ds is not None:
            return ImageRef(ds, info.axes, info.time_s)
    t = info.time_s if info is not None else time_s
    if t is None:
        return None
    return store.at_time(float(t), mode=mode)


def _screening_thumb(rec: RunRecords, store: ImageStore, d: dict[str, Any],
                     cell: dict[str, Any], diameter_um: float) -> Thumb:
    if store.error:
        return Thumb(None, "screening frame", store.error)
    ref = _ref(rec, store, d.get("frame"), d.get("time_s"), "screen")
    img = store.read(ref) if ref is not None else None
    if img is None or not cell:
        return Thumb(None, "screening frame", "image not found in the data set")
    info = rec.frames.get(d.get("frame", -1))
    ps = (info.pixel_size_um if info is not None and info.pixel_size_um else None)
    d_px = diameter_um / ps if ps else 28.0
    crop, y, x = cell_crop(img, float(cell["y_px"]), float(cell["x_px"]), int(4 * d_px))
    uri = png_thumbnail(crop, box=(y, x, 0.75 * d_px))
    side_um = f", {crop.shape[1] * ps:.0f} um wide" if ps else ""
    return Thumb(uri, f"screening frame {d.get('frame')}: the cell boxed{side_um}")


def _followup_thumb(rec: RunRecords, store: ImageStore, d: dict[str, Any], frame: int | None,
                    diameter_um: float) -> Thumb:
    if store.error:
        return Thumb(None, "first follow-up frame", store.error)
    ref = _ref(rec, store, frame, None, "follow") if frame is not None else None
    if ref is None and d.get("time_s") is not None:
        ref = store.first_after(float(d["time_s"]), "follow")
    img = store.read(ref) if ref is not None else None
    if img is None:
        return Thumb(None, "first follow-up frame", "no follow-up image found")
    h, w = img.shape[-2:]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    info = rec.frames.get(frame) if frame is not None else None
    ps = info.pixel_size_um if info is not None else None
    found = _nearest(rec.follow_cells.get(frame, []) if frame is not None else [], cy, cx)
    circle, caption = None, f"first follow-up frame {frame if frame is not None else ''}".strip()
    objective = (d.get("target") or {}).get("objective") or (info.objective if info else "")
    if objective:
        caption += f" ({objective})"
    caption += ": + where the cell was centred"
    if found is not None and ps:
        dist_um = math.hypot(found.y - cy, found.x - cx) * ps
        r_px = diameter_um / 2 / ps
        if dist_um <= diameter_um:
            circle = (found.y, found.x, r_px)
            caption += (f"; circled: nucleus found {dist_um:.1f} um from the centre, "
                        f"{found.phase} ({found.confidence:.2f})")
    uri = png_thumbnail(img, cross=(cy, cx), circle=circle)
    return Thumb(uri, caption)


def _nearest(cells: list[FollowCell], y: float, x: float) -> FollowCell | None:
    return min(cells, key=lambda c: (c.y - y) ** 2 + (c.x - x) ** 2) if cells else None
