"""The one base class of every configuration and record model: frozen pydantic, unknown fields
refused (a typo in a protocol file, a model card or a simulator configuration is an error), no
NaN or infinity, no yes/no where a number belongs.

Protocol sections use ``smartscope.protocol._base.Frozen``, this base plus physical bounds on
every number; model cards and the simulator's configuration use it as it is.
"""

from __future__ import annotations

import functools
import json
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


@functools.lru_cache(maxsize=512)
def _admits_bool(annotation: Any) -> bool:
    """Whether a field typed ``annotation`` may hold ``True``/``False`` (bool, Any, a Literal of
    a bool, or a container or union of such)."""
    if annotation is bool or annotation is Any or annotation is object:
        return True
    if typing.get_origin(annotation) is typing.Literal:
        return any(isinstance(a, bool) for a in typing.get_args(annotation))
    return any(_admits_bool(a) for a in typing.get_args(annotation)
               if not isinstance(a, str | int | float | type(None) | typing.ForwardRef))


class FrozenModel(BaseModel):
    """Frozen pydantic model with ``extra="forbid"``; NaN and infinity are refused, and so is a
    boolean where the field is not one (pydantic reads ``true`` as 1 for a number: in YAML that
    is ``yes``/``on`` as well, so ``exposure_ms: yes`` would be a 1 ms exposure)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, v in data.items():
            items = v if isinstance(v, list | tuple) else (v,)
            if not any(isinstance(x, bool) for x in items):
                continue
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None:
                continue  # unknown fields are refused by extra="forbid"
            try:
                admits = _admits_bool(field.annotation)  # type: ignore[arg-type]
            except TypeError:  # an unhashable annotation: leave it to pydantic
                continue
            if not admits:
                shown = json.dumps(v) if isinstance(v, bool) else f"{json.dumps(list(v))}"
                raise ValueError(f"{name}: {shown} is a yes/no, not a number (YAML also reads "
                                 "yes/no/on/off so); give a number")
        return data
