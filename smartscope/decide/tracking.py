"""Follow nuclei from one screening frame to the next at a screening position.

Nuclei are linked in stage micrometres, so a track survives a change of objective or pixel size
between runs of the same position. Linking is nearest neighbour, one to one: every pair (track,
nucleus) closer than ``max_displacement_um`` is a candidate, and candidates are taken in order of
increasing distance, each track and each nucleus at most once. A track not seen in a frame is kept
for ``max_missed_frames`` further frames (a missed detection, a nucleus briefly at the border),
measured from where it was last seen; after that it ends and a nucleus there starts a new track.

Divisions: when a nucleus is unlinked but lies within ``max_displacement_um`` of a track that was
linked to another nucleus in the same frame, the two are taken to be the halves of a division (or
of a nucleus that the detection split): the nearer half keeps the mother's track, the other gets a
new track whose ``parent`` is the mother's. Two nuclei that merge (daughters that touch again, a
detection that fuses neighbours) continue the nearer track; the other track is treated as missed
and ends after ``max_missed_frames`` frames.

Track ids are whole numbers, unique over the run (all positions), starting at 1.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    """The track a nucleus was linked to.

    Attributes
    ----------
    track : int
        Track id (unique over the run).
    parent : int or None
        For the second half of a division: the mother's track id (which the other half keeps).
    new : bool
        The track starts in this frame.
    """

    track: int
    parent: int | None = None
    new: bool = False


@dataclass
class _Track:
    id: int
    x_um: float
    y_um: float
    last_frame: int


class NucleusTracker:
    """Links nuclei between consecutive screening frames, separately for each position.

    Parameters
    ----------
    max_displacement_um : float
        Largest distance, um, a nucleus may move between two screening frames (and between the
        last frame a track was seen and now, when frames were missed) and keep its track.
    max_missed_frames : int
        Frames in a row a track may go unseen and still be continued (0: a single missed
        detection ends it).

    Raises
    ------
    ValueError
        If ``max_displacement_um`` is not positive or ``max_missed_frames`` is negative.
    """

    def __init__(self, max_displacement_um: float = 10.0, max_missed_frames: int = 1) -> None:
        if not max_displacement_um > 0:
            raise ValueError(f"max_displacement_um={max_displacement_um}: give a value > 0")
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames={max_missed_frames}: give a value >= 0")
        self.max_displacement_um = float(max_displacement_um)
        self.max_missed_frames = int(max_missed_frames)
        self._tracks: dict[Hashable, list[_Track]] = {}
        self._frames: dict[Hashable, int] = {}
        self._next_id = 1

    def frames_seen(self, position: Hashable) -> int:
        """Screening frames linked so far at a position."""
        return self._frames.get(position, 0)

    def link(self, position: Hashable, points_um: Sequence[tuple[float, float]]) -> list[Link]:
        """Link the nuclei of the next screening frame of ``position``.

        Parameters
        ----------
        position : hashable
            The screening position (index or name); positions are tracked independently.
        points_um : sequence of (x_um, y_um)
            Stage coordinates of the frame's nuclei.

        Returns
        -------
        list of Link
            One per nucleus, in the order given.
        """
        frame = self._frames.get(position, 0)
        self._frames[position] = frame + 1
        alive = [t for t in self._tracks.get(position, [])
                 if frame - t.last_frame <= self.max_missed_frames + 1]
        limit2 = self.max_displacement_um ** 2
        pairs = []
        for i, (x, y) in enumerate(points_um):
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            for j, t in enumerate(alive):
                d2 = (x - t.x_um) ** 2 + (y - t.y_um) ** 2
                if d2 <= limit2:
                    pairs.append((d2, i, j))
        pairs.sort()
        links: list[Link | None] = [None] * len(points_um)
        used: set[int] = set()
        for _, i, j in pairs:
            if links[i] is None and j not in used:
                used.add(j)
                links[i] = Link(alive[j].id)
        # unlinked nuclei near a track that was continued in this frame: the other half of a split
        nearest_taken: dict[int, int] = {}
        for _, i, j in pairs:
            if links[i] is None and j in used and i not in nearest_taken:
                nearest_taken[i] = j
        out: list[Link] = []
        for i, link in enumerate(links):
            if link is None:
                parent = alive[nearest_taken[i]].id if i in nearest_taken else None
                link = Link(self._next_id, parent=parent, new=True)
                self._next_id += 1
                alive.append(_Track(link.track, 0.0, 0.0, frame))
            out.append(link)
        by_id = {t.id: t for t in alive}
        for (x, y), link in zip(points_um, out, strict=True):
            t = by_id[link.track]
            t.x_um, t.y_um, t.last_frame = float(x), float(y), frame
        self._tracks[position] = alive
        return out
