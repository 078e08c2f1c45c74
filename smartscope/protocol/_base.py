"""Base model for every protocol section: frozen, unknown fields refused."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Frozen(BaseModel):
    """Frozen pydantic model with ``extra="forbid"``: a typo in a protocol file is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """Relative paths in a protocol file are relative to the file's folder (validation context
    ``base_dir``); without a context they are left as given."""
    base = (info.context or {}).get("base_dir")
    if base is not None and not path.is_absolute():
        return (Path(base) / path).resolve()
    return path
