"""Image pixels -> stage micrometres, and the ONE stage-limit check every move goes through."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from smartscope.classify.cells import Cell
from smartscope.protocol.microscope import CameraOrientation

UPRIGHT = CameraOrientation()
"""Image +x is stage +x, image +y is stage +y."""

Affine = tuple[float, float, float, float]
"""Micro-Manager's pixel-size affine without its translation, (a, b, d, e), um per px: a pixel
offset (dx, dy) from the image centre is the stage offset (a dx + b dy, d dx + e dy)."""


@dataclass(frozen=True)
class Limits:
    """Safe stage travel, um; a None axis is unlimited (the stage reported none)."""

    x_um: tuple[float, float] | None = None
    y_um: tuple[float, float] | None = None
    z_um: tuple[float, float] | None = None

    @staticmethod
    def merge(protocol_limits: Limits, stage_limits: Limits) -> Limits:
        """Per axis: the protocol's limits where given, else the stage's own."""
        return Limits(
            x_um=protocol_limits.x_um if protocol_limits.x_um is not None else stage_limits.x_um,
            y_um=protocol_limits.y_um if protocol_limits.y_um is not None else stage_limits.y_um,
            z_um=protocol_limits.z_um if protocol_limits.z_um is not None else stage_limits.z_um,
        )


    def near_focus(self, z_low_um: float, z_high_um: float, travel_um: float) -> Limits:
        """These limits with z also kept within ``travel_um`` of the focus range
        [``z_low_um``, ``z_high_um``] (the screening focus at the start of the run)."""
        lo, hi = z_low_um - travel_um, z_high_um + travel_um
        if self.z_um is not None:
            lo, hi = max(lo, self.z_um[0]), min(hi, self.z_um[1])
        if lo > hi:  # the focus itself lies outside the z limits: keep them, positions are refused
            return self
        return Limits(x_um=self.x_um, y_um=self.y_um, z_um=(lo, hi))


NO_LIMITS = Limits()
"""No limit on any axis."""


def check_target(
    limits: Limits, x_um: float | None, y_um: float | None, z_um: float | None
) -> str | None:
    """Why a stage target is unsafe, or None when it lies inside the limits (inclusive).

    Non-finite coordinates are always refused. A None coordinate means "not moved".
    """
    for axis, value, lim in (("x", x_um, limits.x_um), ("y", y_um, limits.y_um),
                             ("z", z_um, limits.z_um)):
        if value is None:
            continue
        if not math.isfinite(value):
            return f"{axis} target {value} is not a finite number"
        if lim is not None and not lim[0] <= value <= lim[1]:
            return f"{axis} target {value:.2f} um is outside the safe range [{lim[0]}, {lim[1]}] um"
    return None


def image_centre_px(shape: tuple[int, int]) -> tuple[float, float]:
    """(y, x) of the image centre in pixel-index coordinates (pixel 0 is centred on 0)."""
    return (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0


def pixel_to_stage(
    y_px: float,
    x_px: float,
    *,
    shape: tuple[int, int],
    pixel_size_um: float,
    stage_x_um: float,
    stage_y_um: float,
    orientation: CameraOrientation = UPRIGHT,
    affine: Affine | None = None,
) -> tuple[float, float]:
    """Stage (x, y) in um that puts pixel (y_px, x_px) of an image at the image centre.

    The image was taken with the stage at (stage_x_um, stage_y_um); the offset of the pixel from
    the image centre is flipped and rotated per ``orientation``, then scaled by the pixel size.
    With ``affine`` (Micro-Manager's calibration) the offset is mapped by it instead, and
    ``orientation`` and ``pixel_size_um`` are not used.
    """
    cy, cx = image_centre_px(shape)
    dx, dy = x_px - cx, y_px - cy
    if affine is not None:
        a, b, d, e = affine
        return stage_x_um + a * dx + b * dy, stage_y_um + d * dx + e * dy
    if orientation.flip_x:
        dx = -dx
    if orientation.flip_y:
        dy = -dy
    quarter = (orientation.rotation_deg // 90) % 4
    for _ in range(quarter):  # 90 degrees counter-clockwise each
        dx, dy = -dy, dx
    return stage_x_um + dx * pixel_size_um, stage_y_um + dy * pixel_size_um


def place_cells(
    cells: Iterable[Cell],
    *,
    shape: tuple[int, int],
    pixel_size_um: float,
    stage_x_um: float,
    stage_y_um: float,
    orientation: CameraOrientation = UPRIGHT,
    affine: Affine | None = None,
) -> tuple[Cell, ...]:
    """The cells with their stage position (``Cell.at_stage``, see ``pixel_to_stage``; with
    ``affine``, Micro-Manager's calibration of the objective, as there).

    Cells that already have one are kept as they are: a cell is placed once, where the image
    it was found in is known (the acquisition hook), and the same object is used after that.
    """
    out = []
    for c in cells:
        if c.x_um is None or c.y_um is None:
            x_um, y_um = pixel_to_stage(c.y, c.x, shape=shape, pixel_size_um=pixel_size_um,
                                        stage_x_um=stage_x_um, stage_y_um=stage_y_um,
                                        orientation=orientation, affine=affine)
            c = c.at_stage(x_um, y_um)
        out.append(c)
    return tuple(out)


def stage_to_pixel(
    x_um: float,
    y_um: float,
    *,
    shape: tuple[int, int],
    pixel_size_um: float,
    stage_x_um: float,
    stage_y_um: float,
    orientation: CameraOrientation = UPRIGHT,
    affine: Affine | None = None,
) -> tuple[float, float]:
    """Inverse of ``pixel_to_stage``: where (y_px, x_px) a stage point appears in the image."""
    cy, cx = image_centre_px(shape)
    if affine is not None:
        a, b, d, e = affine
        det = a * e - b * d
        sx, sy = x_um - stage_x_um, y_um - stage_y_um
        return cy + (-d * sx + a * sy) / det, cx + (e * sx - b * sy) / det
    dx = (x_um - stage_x_um) / pixel_size_um
    dy = (y_um - stage_y_um) / pixel_size_um
    quarter = (orientation.rotation_deg // 90) % 4
    for _ in range(quarter):  # undo: 90 degrees clockwise each
        dx, dy = dy, -dx
    if orientation.flip_y:
        dy = -dy
    if orientation.flip_x:
        dx = -dx
    return cy + dy, cx + dx
