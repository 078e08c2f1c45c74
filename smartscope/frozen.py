"""The one base class of every configuration and record model: frozen pydantic, unknown fields
refused (a typo in a protocol file, a model card or a simulator configuration is an error), no
NaN or infinity.

Protocol sections use ``smartscope.protocol._base.Frozen``, this base plus physical bounds on
every number; model cards and the simulator's configuration use it as it is.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Frozen pydantic model with ``extra="forbid"``; NaN and infinity are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
