"""What the planner does with the cells of a frame before deciding, and the checks of a
follow-up: stage coordinates and tracks of the cells, the cell to centre, confirmation of the
centred nucleus at the new objective."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from smartscope.classify.cells import Cell
from smartscope.decide.geometry import Affine, pixel_to_stage
from smartscope.decide.requests import SCREEN
from smartscope.decide.tracking import NucleusTracker
from smartscope.protocol import CameraOrientation, Confirm

if TYPE_CHECKING:
    from smartscope.decide.plan import Frame


def annotate(frame: Frame, orientation: CameraOrientation, tracker: NucleusTracker,
             followed: Sequence[Cell] = (), reach_um: float = 10.0,
             affine: Affine | None = None) -> tuple[Cell, ...]:
    """The frame's cells with stage coordinates (um; kept where a cell has them already),
    distance from the centroid to the nearest image border (um) and tracks.

    A screening frame's cells are linked by ``tracker`` (per screening position). In a follow-up
    frame a nucleus within ``reach_um`` of a cell the follow-up fired on (``followed``, with stage
    coordinates) gets that cell's track; the others get none. ``affine`` (Micro-Manager's
    calibration of the frame's objective) replaces ``orientation`` and the pixel size.
    """
    if frame.cells is None:
        return ()
    h, w = frame.shape
    ps = frame.pixel_size_um
    req = frame.request
    cells = []
    for c in frame.cells:
        if c.x_um is not None and c.y_um is not None:  # placed once already (by the hook)
            x, y = c.x_um, c.y_um
        else:
            x, y = pixel_to_stage(c.y, c.x, shape=frame.shape, pixel_size_um=ps,
                                  stage_x_um=req.x_um, stage_y_um=req.y_um,
                                  orientation=orientation, affine=affine)
        edge = max(0.0, min(c.x, c.y, w - 1 - c.x, h - 1 - c.y) * ps)
        cells.append(replace(c, x_um=x, y_um=y, edge_um=edge))
    if req.mode == SCREEN:
        links = tracker.link(req.position, [(_xy(c)) for c in cells])
        return tuple(replace(c, track=k.track, parent=k.parent)
                     for c, k in zip(cells, links, strict=True))
    known = [(m, _xy(m)) for m in followed if m.x_um is not None and m.y_um is not None]
    out = []
    for c in cells:
        cx, cy = _xy(c)
        dist = [(math.hypot(mx - cx, my - cy), m) for m, (mx, my) in known]
        near = min((d for d in dist if d[0] <= reach_um), key=lambda d: d[0], default=None)
        out.append(replace(c, track=near[1].track) if near is not None else c)
    return tuple(out)


def pick_cell(cells: Sequence[Cell], rule: str, shape: tuple[int, int]) -> Cell:
    """The cell ``centre_on_cell`` centres among the matched ones (given most confident first):
    ``most_confident``, ``largest`` or ``nearest_centre``."""
    if rule == "largest":
        return max(cells, key=lambda c: c.area_um2)
    if rule == "nearest_centre":
        cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
        return min(cells, key=lambda c: (c.y - cy) ** 2 + (c.x - cx) ** 2)
    return cells[0]


def check_confirmation(
    confirm: Confirm, trigger_phases: tuple[str, ...], frame: Frame,
    record: Callable[[Cell, Frame], dict[str, Any]],
) -> tuple[dict[str, Any] | None, str | None]:
    """Check the confirmation frame taken after ``centre_on_cell``.

    The nucleus nearest the image centre must lie within ``confirm.max_offset_um`` of it and be
    in ``confirm.phase`` (default: the trigger's phases) with at least ``confirm.min_confidence``.

    Returns
    -------
    (seen, why)
        ``seen``: that nucleus as a record (``record(cell, frame)`` plus its offset, the pixel size
        and the objective), None when there is none; ``why``: why the trigger is not confirmed,
        None when it is.
    """
    phases = confirm.phase or trigger_phases
    if frame.cells is None:
        return None, "the confirmation frame could not be classified"
    if not frame.cells:
        return None, "no nucleus found in the confirmation frame"
    cy, cx = (frame.shape[0] - 1) / 2, (frame.shape[1] - 1) / 2
    c = min(frame.cells, key=lambda c: (c.y - cy) ** 2 + (c.x - cx) ** 2)
    off = math.hypot(c.y - cy, c.x - cx) * frame.pixel_size_um
    seen = {**record(c, frame), "offset_um": round(off, 2),
            "pixel_size_um": frame.pixel_size_um, "objective": frame.request.objective}
    if off > confirm.max_offset_um:
        return seen, (f"no nucleus within {confirm.max_offset_um:g} um of the centre (nearest at "
                      f"{off:.1f} um)")
    if c.phase not in phases or c.confidence < confirm.min_confidence:
        return seen, (f"the centred nucleus is {c.phase} ({c.confidence:.2f}) at "
                      f"{frame.request.objective}, not {'/'.join(phases)} at >= "
                      f"{confirm.min_confidence:g}")
    return seen, None


def _xy(c: Cell) -> tuple[float, float]:
    return (c.x_um if c.x_um is not None else math.nan, c.y_um if c.y_um is not None else math.nan)
