"""Canonical cell-cycle phase names shared by the simulator, the data set, models and triggers."""

from __future__ import annotations

INTERPHASE = "interphase"
PROPHASE = "prophase"
PROMETAPHASE = "prometaphase"
METAPHASE = "metaphase"
ANAPHASE = "anaphase"
TELOPHASE = "telophase"
APOPTOSIS = "apoptosis"

#: Every phase the simulator knows, in cell-cycle order.
ALL_PHASES: tuple[str, ...] = (
    INTERPHASE, PROPHASE, PROMETAPHASE, METAPHASE, ANAPHASE, TELOPHASE, APOPTOSIS,
)

#: The paper's five Mitocheck classes (anaphase includes telophase pairs).
FIVE_CLASSES: tuple[str, ...] = (INTERPHASE, PROMETAPHASE, METAPHASE, ANAPHASE, APOPTOSIS)

#: Phases counted as "mitotic" for mitotic-vs-interphase scores.
MITOTIC: frozenset[str] = frozenset({PROPHASE, PROMETAPHASE, METAPHASE, ANAPHASE, TELOPHASE})
