"""Micro-Manager's pixel-size calibration per objective preset: pixel size and, when one was
calibrated, the pixel -> stage affine (which then replaces the protocol's camera orientation)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smartscope.acquire import corecalls
from smartscope.decide import Affine

log = logging.getLogger(__name__)

#: what MMCore reports for a pixel-size configuration whose affine was never set
_DEFAULT_AFFINE = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass(frozen=True)
class ObjectiveCalibration:
    """Micro-Manager's calibration of one objective preset.

    Attributes
    ----------
    objective : str
        The objective preset.
    config : str or None
        The pixel-size configuration that applies to it (None: none matches).
    pixel_size_um : float or None
        Its pixel size, um/px.
    affine : Affine or None
        Its pixel -> stage affine (a, b, d, e), um/px, when one was calibrated; None when
        Micro-Manager holds only its default (identity).
    """

    objective: str
    config: str | None
    pixel_size_um: float | None
    affine: Affine | None

    @property
    def source(self) -> str:
        """``micromanager_affine`` or ``protocol_orientation``: what maps pixels to stage."""
        return "micromanager_affine" if self.affine is not None else "protocol_orientation"

    def record(self) -> dict[str, Any]:
        """For ``run.json``."""
        return {"pixel_size_config": self.config, "pixel_size_um": self.pixel_size_um,
                "pixel_to_stage": self.source,
                "affine": list(self.affine) if self.affine is not None else None}


def _floats(vector: Any) -> list[float]:
    if hasattr(vector, "size") and hasattr(vector, "get"):
        return [float(vector.get(i)) for i in range(vector.size())]
    return [float(v) for v in vector]


def _with_labels(core: Any, settings: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Settings plus, for a state device, the same position as ``Label`` and as ``State``
    (a preset may set ``State`` 3 where the pixel-size configuration names its label)."""
    out = set(settings)
    for dev, prop, value in settings:
        if prop not in ("State", "Label"):
            continue
        try:
            labels = corecalls.strings(corecalls.call(core, "getStateLabels", dev))
        except Exception:  # not a state device  # noqa: BLE001
            continue
        if prop == "State" and value.isdigit() and int(value) < len(labels):
            out.add((dev, "Label", labels[int(value)]))
        elif prop == "Label" and value in labels:
            out.add((dev, "State", str(labels.index(value))))
    return out


def pixel_config_for(core: Any, group: str, objective: str) -> str | None:
    """The pixel-size configuration whose settings the objective preset sets (None: none)."""
    preset = _with_labels(core, corecalls.preset_properties(core, group, objective))
    devices = {d for d, _, _ in preset}
    for config in corecalls.strings(corecalls.call(core, "getAvailablePixelSizeConfigs")):
        wanted = set(corecalls.settings(corecalls.call(core, "getPixelSizeConfigData", config)))
        if not wanted or not any(d in devices for d, _, _ in wanted):
            continue
        if all(s in preset or (s[0] not in devices and str(
                corecalls.call(core, "getProperty", s[0], s[1])) == s[2]) for s in wanted):
            return config
    return None


def calibration_of(core: Any, group: str, objective: str) -> ObjectiveCalibration:
    """Micro-Manager's calibration of one objective preset (reads only; moves nothing)."""
    config = pixel_config_for(core, group, objective)
    if config is None:
        return ObjectiveCalibration(objective, None, None, None)
    ps = float(corecalls.call(core, "getPixelSizeUmByID", config))
    raw = _floats(corecalls.call(core, "getPixelSizeAffineByID", config))
    affine: Affine | None = None
    if len(raw) == 6 and any(raw) and tuple(raw) != _DEFAULT_AFFINE:
        affine = (raw[0], raw[1], raw[3], raw[4])
        scale = math.sqrt(abs(affine[0] * affine[3] - affine[1] * affine[2]))
        if ps > 0 and abs(scale - ps) > 0.05 * ps:
            log.warning("Micro-Manager's affine for %s (%s) scales %.4g um/px but its pixel size "
                        "is %.4g um/px; the affine is used for pixel -> stage", objective, config,
                        scale, ps)
    return ObjectiveCalibration(objective, config, ps if ps > 0 else None, affine)


def calibrations(
    core: Any, group: str, objectives: Iterable[str]
) -> dict[str, ObjectiveCalibration]:
    """``calibration_of`` for each objective preset."""
    return {o: calibration_of(core, group, o) for o in dict.fromkeys(objectives)}
