"""Trigger rules: phase + confidence + cell count, persistence over frames, cooldown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smartscope.protocol.schema import Trigger


@dataclass(frozen=True)
class Cell:
    """One classified nucleus in a frame: position in px, phase, confidence, area in um^2."""

    y: float
    x: float
    phase: str
    confidence: float
    area_um2: float = 0.0


def matching_cells(trigger: Trigger, cells: Sequence[Cell]) -> list[Cell]:
    """Cells in one of the trigger's phases with at least its confidence, most confident first."""
    hits = [c for c in cells if c.phase in trigger.phase and c.confidence >= trigger.min_confidence]
    return sorted(hits, key=lambda c: -c.confidence)


def condition_holds(trigger: Trigger, cells: Sequence[Cell]) -> bool:
    """True when at least ``min_cells`` cells match (persistence not counted)."""
    return len(matching_cells(trigger, cells)) >= trigger.min_cells


class TriggerTracker:
    """Counts, per trigger and screening position, the consecutive frames where it matched, and
    fires a trigger once the count reaches ``consecutive_frames`` outside its cooldown.

    Times are seconds on one clock (the acquisition's image timestamps). The first trigger in
    protocol order that fires wins; its count is reset when it fires.
    """

    def __init__(self, triggers: Sequence[Trigger]) -> None:
        self._triggers = tuple(triggers)
        self._counts: dict[tuple[str, int], int] = {}
        self._last_fired_s: dict[tuple[str, int], float] = {}

    def count(self, trigger_name: str, position: int) -> int:
        """Consecutive matching frames so far for a trigger at a position."""
        return self._counts.get((trigger_name, position), 0)

    def in_cooldown(self, trigger: Trigger, position: int, time_s: float) -> bool:
        last = self._last_fired_s.get((trigger.name, position))
        return last is not None and time_s - last < trigger.cooldown_s

    def update(
        self, position: int, time_s: float, cells: Sequence[Cell]
    ) -> tuple[Trigger, list[Cell]] | None:
        """Feed one screening frame; returns (trigger, matched cells) when one fires."""
        fired: tuple[Trigger, list[Cell]] | None = None
        for trig in self._triggers:
            key = (trig.name, position)
            matched = matching_cells(trig, cells)
            if len(matched) >= trig.min_cells:
                self._counts[key] = self._counts.get(key, 0) + 1
            else:
                self._counts[key] = 0
            if (
                fired is None
                and self._counts[key] >= trig.consecutive_frames
                and not self.in_cooldown(trig, position, time_s)
            ):
                fired = (trig, matched)
                self._counts[key] = 0
                self._last_fired_s[key] = time_s
        return fired
