"""Trigger rules: which nuclei count, persistence over frames (per tracked cell or per field),
cells already followed, a cap on follow-ups per run, cooldown."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from smartscope.classify.cells import Cell
from smartscope.protocol.schema import Trigger

__all__ = ["Cell", "TriggerTracker", "condition_holds", "eligible", "matching_cells",
           "phase_score"]


def eligible(trigger: Trigger, cell: Cell) -> bool:
    """Whether a nucleus may trigger at all: far enough from the border, area within bounds."""
    if cell.edge_um < trigger.edge_margin_um:
        return False
    if trigger.min_area_um2 is not None and cell.area_um2 < trigger.min_area_um2:
        return False
    return trigger.max_area_um2 is None or cell.area_um2 <= trigger.max_area_um2


def phase_score(trigger: Trigger, cell: Cell) -> float:
    """The cell's probability of the trigger's phase (the largest over its phases); without
    per-class probabilities, its confidence when it is called one of them, else 0. A value
    that is not a number counts as 0 (one such frame lowers a mean, it does not void it for
    ``consecutive_frames`` frames)."""
    if cell.probabilities:
        score = max(_finite(cell.probabilities.get(p, 0.0)) for p in trigger.phase)
    else:
        score = _finite(cell.confidence) if cell.phase in trigger.phase else 0.0
    return score


def _finite(p: float) -> float:
    return float(p) if math.isfinite(p) else 0.0


def matching_cells(trigger: Trigger, cells: Sequence[Cell]) -> list[Cell]:
    """Eligible cells in one of the trigger's phases with at least its confidence, most confident
    first."""
    hits = [c for c in cells if c.phase in trigger.phase
            and c.confidence >= trigger.min_confidence and eligible(trigger, c)]
    return sorted(hits, key=lambda c: -c.confidence)


def condition_holds(trigger: Trigger, cells: Sequence[Cell]) -> bool:
    """True when at least ``min_cells`` cells match (persistence not counted)."""
    return len(matching_cells(trigger, cells)) >= trigger.min_cells


class TriggerTracker:
    """Decides, frame by frame, whether a trigger fires at a screening position.

    ``persistence: cell`` (default): a cell counts once its track has matched in
    ``consecutive_frames`` screening frames in a row (a frame where the track is missed or does
    not match starts the count again); a cell without a track (``track`` None) has no history and
    counts only when ``consecutive_frames`` is 1. With ``evidence: mean`` a tracked cell counts
    once it was eligible in ``consecutive_frames`` frames in a row, its mean probability of the
    phase over them (``phase_score``) reaches ``min_confidence`` and it is called the phase in
    the last one (a frame where it is missed or not eligible starts the count again).
    ``persistence: field``: the position counts once ``min_cells`` cells matched in
    ``consecutive_frames`` frames in a row, whichever cells.

    The trigger fires when at least ``min_cells`` cells count, outside its cooldown at the
    position, below its ``max_followups``. With ``once_per_cell`` (default) cells whose track this
    trigger already followed (see ``mark_followed``) never count again. Times are seconds on one
    clock (the acquisition's image timestamps). The first trigger in protocol order that fires
    wins; the persistence counts of the cells it fired on start again.
    """

    def __init__(self, triggers: Sequence[Trigger]) -> None:
        self._triggers = tuple(triggers)
        self._counts: dict[tuple[str, int], int] = {}
        self._streaks: dict[tuple[str, int], dict[int, int]] = {}
        self._windows: dict[tuple[str, int], dict[int, tuple[float, ...]]] = {}
        self._means: dict[tuple[str, int], tuple[float, ...]] = {}
        self.evidence: tuple[float, ...] | None = None
        """After ``update`` fired a trigger with ``evidence: mean``: each counting cell's mean
        probability of the phase over its window, in the order of the cells returned (what
        made it count; the cell's own ``confidence`` is the last frame's); else None."""
        self._last_fired_s: dict[tuple[str, int], float] = {}
        self._followed: dict[str, set[int]] = {t.name: set() for t in self._triggers}
        self._fired: dict[str, int] = {t.name: 0 for t in self._triggers}

    def count(self, trigger_name: str, position: int) -> int:
        """Consecutive frames so far for a trigger at a position: the field's count, or the
        longest streak of any tracked cell."""
        streaks = self._streaks.get((trigger_name, position), {})
        windows = self._windows.get((trigger_name, position), {})
        return max([self._counts.get((trigger_name, position), 0), *streaks.values(),
                    *(len(w) for w in windows.values())])

    def followed(self, trigger_name: str) -> frozenset[int]:
        """Tracks this trigger has followed."""
        return frozenset(self._followed.get(trigger_name, ()))

    def fired(self, trigger_name: str) -> int:
        """How often this trigger fired in the run."""
        return self._fired.get(trigger_name, 0)

    def mark_followed(self, trigger_name: str, tracks: Iterable[int | None]) -> None:
        """Record the tracks a follow-up of this trigger looked at."""
        self._followed.setdefault(trigger_name, set()).update(t for t in tracks if t is not None)

    def in_cooldown(self, trigger: Trigger, position: int, time_s: float) -> bool:
        last = self._last_fired_s.get((trigger.name, position))
        return last is not None and time_s - last < trigger.cooldown_s

    def capped(self, trigger: Trigger) -> bool:
        """The trigger has used up its ``max_followups``."""
        return trigger.max_followups is not None and self.fired(trigger.name) >= \
            trigger.max_followups

    def _counting(self, trig: Trigger, position: int, cells: Sequence[Cell]) -> list[Cell]:
        """Update the persistence counts with one frame's cells; the cells that count now."""
        key = (trig.name, position)
        done = self._followed[trig.name] if trig.once_per_cell else set()
        if trig.evidence == "mean":
            return self._mean_counting(trig, key, cells, done)
        fresh = [c for c in matching_cells(trig, cells) if c.track is None or c.track not in done]
        if trig.persistence == "field":
            ok = len(fresh) >= trig.min_cells
            self._counts[key] = self._counts.get(key, 0) + 1 if ok else 0
            return fresh if self._counts[key] >= trig.consecutive_frames else []
        old = self._streaks.get(key, {})
        new = {c.track: old.get(c.track, 0) + 1 for c in fresh if c.track is not None}
        self._streaks[key] = new
        n = trig.consecutive_frames
        return [c for c in fresh if (new[c.track] if c.track is not None else 1) >= n]

    def _mean_counting(self, trig: Trigger, key: tuple[str, int], cells: Sequence[Cell],
                       done: set[int]) -> list[Cell]:
        """``evidence: mean``: each eligible cell's probability of the phase over its last
        ``consecutive_frames`` frames; the cells called the phase now whose mean reaches
        ``min_confidence``, highest mean first."""
        n = trig.consecutive_frames
        old = self._windows.get(key, {})
        new: dict[int, tuple[float, ...]] = {}
        scored: list[tuple[float, Cell]] = []
        for c in cells:
            if not eligible(trig, c) or (c.track is not None and c.track in done):
                continue
            if c.track is None:
                window: tuple[float, ...] = (phase_score(trig, c),)
            else:
                window = new[c.track] = (*old.get(c.track, ()), phase_score(trig, c))[-n:]
            mean = sum(window) / len(window)
            if len(window) >= n and c.phase in trig.phase and mean >= trig.min_confidence:
                scored.append((mean, c))
        self._windows[key] = new
        scored.sort(key=lambda mc: -mc[0])
        self._means[key] = tuple(m for m, _ in scored)
        return [c for _, c in scored]

    def update(
        self, position: int, time_s: float, cells: Sequence[Cell]
    ) -> tuple[Trigger, list[Cell]] | None:
        """Feed one screening frame; returns (trigger, cells that count) when one fires."""
        fired: tuple[Trigger, list[Cell]] | None = None
        self.evidence = None
        for trig in self._triggers:
            key = (trig.name, position)
            counting = self._counting(trig, position, cells)
            if (
                fired is None
                and len(counting) >= trig.min_cells
                and not self.in_cooldown(trig, position, time_s)
                and not self.capped(trig)
            ):
                fired = (trig, counting)
                if trig.evidence == "mean":
                    self.evidence = self._means.get(key, ())
                self._counts[key] = 0
                streaks = self._streaks.get(key, {})
                windows = self._windows.get(key, {})
                for c in counting:
                    if c.track is not None:
                        streaks.pop(c.track, None)
                        windows.pop(c.track, None)
                self._last_fired_s[key] = time_s
                self._fired[trig.name] = self.fired(trig.name) + 1
        return fired
