"""Base model for every protocol section: frozen, unknown fields refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationInfo, field_validator

from smartscope.frozen import FrozenModel

DAY_S = 86400.0
#: physical upper bounds by the unit a field's name ends with: (suffix, bound, in words); the
#: first matching suffix applies. A field may set a tighter bound of its own (``le=``).
UNIT_BOUNDS: tuple[tuple[str, float, str], ...] = (
    ("_ms", 3600e3, "1 hour"),
    ("_s", 366 * DAY_S, "366 days"),
    ("_um2", 1e8, "1 cm2"),
    ("_um", 1e6, "1 m"),
    ("_px", 1e5, "100000 px"),
)
MAX_PLAIN = 1e6
"""Bound on any other number (counts, scales, levels): no microscope run needs more."""
MAX_SEED = 2**32 - 1


def physical_bound(name: str) -> tuple[float, str]:
    """The upper bound on the magnitude of a protocol number called ``name``, and in words."""
    if name == "seed":
        return float(MAX_SEED), "2**32 - 1"
    for suffix, bound, words in UNIT_BOUNDS:
        if name.endswith(suffix):
            return bound, words
    return MAX_PLAIN, f"{MAX_PLAIN:g}"


class Frozen(FrozenModel):
    """Frozen pydantic model with ``extra="forbid"`` (``smartscope.frozen.FrozenModel``): a typo
    in a protocol file is an error.

    Every number must be finite and within a physical bound given by its unit
    (:func:`physical_bound`): an interval of 1e300 s passes no check of its own but overflows
    time arithmetic during the run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _physical_bounds(cls, v: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        values = v if isinstance(v, tuple) else (v,)
        for x in values:
            if isinstance(x, bool) or not isinstance(x, int | float):
                continue
            bound, words = physical_bound(name)
            if name == "seed" and x < 0:
                raise ValueError(f"value {x}: a seed is a whole number from 0 to {MAX_SEED}")
            if abs(x) > bound:
                shown = x if isinstance(x, int) else f"{x:g}"
                raise ValueError(f"value {shown} is beyond what a microscope run can use (at "
                                 f"most {words}); give a realistic value")
        return v


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """Relative paths in a protocol file are relative to the file's folder (validation context
    ``base_dir``); without a context they are left as given."""
    base = (info.context or {}).get("base_dir")
    if base is not None and not path.is_absolute():
        return (Path(base) / path).resolve()
    return path
