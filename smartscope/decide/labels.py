"""Ground truth from labelled nuclei without identities (a recorded movie with phase labels).

``LabelTruth`` implements ``smartscope.decide.capture.TruthProvider`` from rows of
(time_s, x_um, y_um, phase): the labels are linked into cells with ``NucleusTracker`` (frames in
time order, nearest neighbour within ``max_displacement_um``, no missed frame), each cell's
consecutive labels in the target phases form an episode from its first to its last such label,
and ``cell_at`` answers with the nearest label of the latest labelled frame at or before the time
asked (the frame a camera showing the movie would have shown).

Labels that are not nuclei (debris, "junk") should be left out or given a phase no trigger uses:
a trigger on them then counts as wrong, which it is.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from smartscope.decide.capture import Episode, ScreenedField, TrueCell
from smartscope.decide.tracking import NucleusTracker


@dataclass(frozen=True)
class _Label:
    cell: str
    x_um: float
    y_um: float
    phase: str


class LabelTruth:
    """A ``TruthProvider`` over labelled nuclei.

    Parameters
    ----------
    rows : iterable of (time_s, x_um, y_um, phase)
        Every labelled nucleus: run time of its frame (s) and stage coordinates (um).
    match_um : float
        A detection farther than this from every label of the frame is "no cell", um.
    max_displacement_um : float
        Linking distance between consecutive labelled frames, um.
    """

    def __init__(self, rows: Iterable[tuple[float, float, float, str]], match_um: float = 9.0,
                 max_displacement_um: float = 10.0) -> None:
        by_time: dict[float, list[tuple[float, float, str]]] = {}
        for t, x, y, ph in rows:
            by_time.setdefault(float(t), []).append((float(x), float(y), str(ph)))
        self.match_um = float(match_um)
        self.times = sorted(by_time)
        tracker = NucleusTracker(max_displacement_um, max_missed_frames=0)
        self._frames: list[list[_Label]] = []
        for t in self.times:
            labels = by_time[t]
            links = tracker.link(0, [(x, y) for x, y, _ in labels])
            self._frames.append([_Label(str(link.track), x, y, ph)
                                 for (x, y, ph), link in zip(labels, links, strict=True)])

    def _frame_at(self, time_s: float) -> int | None:
        if not self.times:
            return None
        i = bisect.bisect_right(self.times, time_s) - 1
        return max(i, 0)

    def cell_at(self, x_um: float, y_um: float, time_s: float) -> TrueCell | None:
        """The nearest label within ``match_um`` in the latest labelled frame at or before
        ``time_s`` (the first frame before the first label time)."""
        i = self._frame_at(time_s)
        if i is None or not self._frames[i]:
            return None
        best = min(self._frames[i], key=lambda c: (c.x_um - x_um) ** 2 + (c.y_um - y_um) ** 2)
        if (best.x_um - x_um) ** 2 + (best.y_um - y_um) ** 2 > self.match_um ** 2:
            return None
        return TrueCell(best.cell, best.phase, best.x_um, best.y_um)

    def find(self, cell: str, time_s: float) -> TrueCell | None:
        """The label of cell ``cell`` in the latest labelled frame at or before ``time_s`` (None:
        not labelled there)."""
        i = self._frame_at(time_s)
        if i is None:
            return None
        hit = next((c for c in self._frames[i] if c.cell == cell), None)
        return None if hit is None else TrueCell(hit.cell, hit.phase, hit.x_um, hit.y_um)

    def episodes(self, phases: Collection[str], fields: Sequence[ScreenedField],
                 start_s: float, end_s: float) -> list[Episode]:
        """Runs of consecutive labelled frames in which a linked cell inside a field is in
        ``phases``, clipped to [start_s, end_s]; an episode lasts until the next labelled frame
        after its last label (when the phase may have changed)."""
        open_: dict[str, Episode] = {}
        out: list[Episode] = []
        for k, (t, labels) in enumerate(zip(self.times, self._frames, strict=True)):
            until = self.times[k + 1] if k + 1 < len(self.times) else t
            seen: set[str] = set()
            for c in labels:
                where = next((f for f in fields if f.contains(c.x_um, c.y_um)), None)
                if c.phase not in phases or where is None:
                    continue
                seen.add(c.cell)
                ep = open_.get(c.cell)
                open_[c.cell] = (Episode(c.cell, t, until, where.position) if ep is None
                                 else Episode(ep.cell, ep.start_s, until, ep.position))
            for cell in [k2 for k2 in open_ if k2 not in seen]:
                out.append(open_.pop(cell))
        out.extend(open_.values())
        clipped = [Episode(e.cell, max(e.start_s, start_s), min(e.end_s, end_s), e.position)
                   for e in out if e.end_s >= start_s and e.start_s <= end_s]
        return sorted(clipped, key=lambda e: (e.start_s, e.cell))
