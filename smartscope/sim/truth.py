"""The simulated sample as the ground truth of event-capture scoring.

``SimTruth`` implements ``smartscope.decide.capture.TruthProvider``: the run's records are in run
seconds (image timestamps), the sample lives in sim seconds; a linear ``TimeMap`` fitted on the
frames of the run converts between the two (the simulator's clock is linear in real time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from smartscope.decide.capture import Episode, ScreenedField, TrueCell
from smartscope.sim.sample import CellTruth


@dataclass(frozen=True)
class TimeMap:
    """sim_s = offset_s + scale * run_s."""

    offset_s: float
    scale: float

    @classmethod
    def fit(cls, pairs: Sequence[tuple[float, float]], scale: float | None = None) -> TimeMap:
        """Least-squares fit on (run_s, sim_s) pairs; with ``scale`` given only the offset is
        fitted (its median, robust to a late timestamp).

        Raises
        ------
        ValueError
            Without any pair.
        """
        if not pairs:
            raise ValueError("no (run time, sim time) pair to fit the time map on")
        if scale is None and len(pairs) >= 2:
            n = len(pairs)
            mr = sum(r for r, _ in pairs) / n
            ms = sum(s for _, s in pairs) / n
            var = sum((r - mr) ** 2 for r, _ in pairs)
            if var > 0:
                b = sum((r - mr) * (s - ms) for r, s in pairs) / var
                return cls(ms - b * mr, b)
        b = 1.0 if scale is None else float(scale)
        offsets = sorted(s - b * r for r, s in pairs)
        return cls(offsets[len(offsets) // 2], b)

    def to_sim(self, run_s: float) -> float:
        return self.offset_s + self.scale * run_s

    def to_run(self, sim_s: float) -> float:
        return (sim_s - self.offset_s) / self.scale


class SimTruth:
    """``TruthProvider`` over the simulator's sample.

    Parameters
    ----------
    cells_at : callable
        Sim time (s) -> every cell of the slide (``Sample.cells_at`` or ``SimMicroscope.truth``).
    time_map : TimeMap
        Run seconds <-> sim seconds.
    match_um : float
        A detection farther than this from every true centre is "no cell", um (about a nucleus
        radius; the centre of an anaphase lies between its two chromatin masses).
    step_s : float
        Sampling step of the sample's history when looking for episodes, sim s (shorter than
        the shortest phase of interest).
    """

    def __init__(self, cells_at: Callable[[float], list[CellTruth]], time_map: TimeMap,
                 match_um: float = 9.0, step_s: float = 30.0) -> None:
        self._cells_at = cells_at
        self.time_map = time_map
        self.match_um = float(match_um)
        self.step_s = float(step_s)
        self._by_id: dict[float, dict[str, TrueCell]] = {}

    def cell_at(self, x_um: float, y_um: float, time_s: float) -> TrueCell | None:
        """The true cell nearest a stage point at run time ``time_s`` (within ``match_um``)."""
        cells = self._cells_at(self.time_map.to_sim(time_s))
        if not cells:
            return None
        best = min(cells, key=lambda c: (c.x_um - x_um) ** 2 + (c.y_um - y_um) ** 2)
        if math.hypot(best.x_um - x_um, best.y_um - y_um) > self.match_um:
            return None
        return TrueCell(str(best.id), best.phase, best.x_um, best.y_um)

    def find(self, cell: str, time_s: float) -> TrueCell | None:
        """The true cell with id ``cell`` at run time ``time_s`` (None: divided or gone)."""
        cells = self._by_id.get(time_s)
        if cells is None:
            if len(self._by_id) > 256:
                self._by_id.clear()
            cells = {str(c.id): TrueCell(str(c.id), c.phase, c.x_um, c.y_um)
                     for c in self._cells_at(self.time_map.to_sim(time_s))}
            self._by_id[time_s] = cells
        return cells.get(cell)

    def episodes(self, phases: Collection[str], fields: Sequence[ScreenedField],
                 start_s: float, end_s: float) -> list[Episode]:
        """Target-phase stretches of cells inside ``fields`` between two run times.

        The sample is looked at every ``step_s`` sim seconds; the boundaries are the phase's own
        (from the time the cell has spent in it and its length), kept within the samples before
        and after (a cell that drifted into the field starts its episode no earlier than the
        sample before it was seen there). Consecutive target phases form one episode; a cell is
        a new cell after its division (daughters have their own ids).
        """
        t0, t1 = self.time_map.to_sim(start_s), self.time_map.to_sim(end_s)
        n = max(1, int(math.ceil((t1 - t0) / self.step_s)))
        open_: dict[int, tuple[float, float, str]] = {}  # id -> (start, end bound, position)
        out: list[tuple[int, float, float, str]] = []
        prev = t0
        for k in range(n + 1):
            t = min(t1, t0 + k * self.step_s)
            seen: set[int] = set()
            for c in self._cells_at(t):
                if c.phase not in phases:
                    continue
                where = next((f for f in fields if f.contains(c.x_um, c.y_um)), None)
                if where is None:
                    continue
                seen.add(c.id)
                ends = t + max(0.0, c.phase_duration_s - c.phase_elapsed_s)
                if c.id in open_:
                    open_[c.id] = (open_[c.id][0], ends, open_[c.id][2])
                else:
                    open_[c.id] = (max(prev, t - c.phase_elapsed_s), ends, where.position)
            for cid in [i for i in open_ if i not in seen]:
                s, e, pos = open_.pop(cid)
                out.append((cid, s, min(e, t), pos))
            prev = t
        out += [(cid, s, min(e, t1), pos) for cid, (s, e, pos) in open_.items()]
        return sorted((Episode(str(cid), self.time_map.to_run(s), self.time_map.to_run(e), pos)
                       for cid, s, e, pos in out), key=lambda ep: (ep.start_s, ep.cell))
