"""Ground truth of a recorded movie: labelled nuclei (``frame, y, x, phase``) in stage and sample
time coordinates, for scoring what a replayed run triggered on.

The labels need not cover every nucleus: a position with no label within the match radius has
no known phase (``None``). Rows whose phase is not a phase name (``junk``, ``uncertain``) are
kept as labelled-but-unknown. Extra columns are ignored, except ``group``: labels that share a
group are one cell (or one dividing cell and its daughters) across frames; without it, labels
are linked frame to frame by distance.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartscope import phases
from smartscope.errors import RecordingError

_REQUIRED = ("frame", "y", "x", "phase")


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled nucleus: recorded frame (0-based), centre (px of the recording), phase."""

    frame: int
    y_px: float
    x_px: float
    phase: str
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Episode:
    """One cell's stay in a phase: recorded frames ``first_frame``-``last_frame`` (inclusive),
    sample times ``[start_s, end_s)``, position (stage um, at its first frame)."""

    id: int
    phase: str
    first_frame: int
    last_frame: int
    start_s: float
    end_s: float
    x_um: float
    y_um: float
    labels: tuple[Label, ...] = ()


def read_labels(path: str | Path, n_frames: int, shape: tuple[int, int]) -> list[Label]:
    """Read a labels CSV and check every label lies inside the movie.

    Raises
    ------
    RecordingError
        Missing file or columns, a value that is not a number, or a label outside the movie
        (frame >= ``n_frames`` or a position outside ``shape``), naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: ground-truth labels not found; give a CSV with columns "
                             "frame, y, x, phase")
    labels = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or ())]
        if missing:
            raise RecordingError(f"{path}: columns {', '.join(missing)} are missing; give a CSV "
                                 "with columns frame, y, x, phase (px of the recording)")
        for line, row in enumerate(reader, start=2):
            try:
                frame, y, x = int(row["frame"]), float(row["y"]), float(row["x"])
            except (TypeError, ValueError) as e:
                raise RecordingError(f"{path}: line {line}: frame, y, x must be numbers "
                                     f"(got {row['frame']!r}, {row['y']!r}, {row['x']!r})") from e
            h, w = shape
            if not 0 <= frame < n_frames:
                raise RecordingError(
                    f"{path}: line {line}: frame {frame} is outside the movie (frames 0-"
                    f"{n_frames - 1}); labels must refer to this movie's 0-based frames")
            if not (-0.5 <= y <= h - 0.5 and -0.5 <= x <= w - 0.5):
                raise RecordingError(
                    f"{path}: line {line}: (y, x) = ({y:g}, {x:g}) px is outside the {h} x {w} "
                    "px frames; labels must be pixel positions in this movie")
            group = row.get("group") or None
            labels.append(Label(frame, y, x, (row["phase"] or "").strip(), group))
    return labels


class RecordedTruth:
    """Labelled nuclei of a replayed movie, queried in stage um and sample seconds.

    Parameters
    ----------
    labels : iterable of Label
    n_frames, shape : int, (rows, cols)
        Of the movie.
    pixel_size_um, frame_interval_s : float
        Of the recording.
    centre_um : (x, y)
        Stage position of the recording's centre.
    loop : bool
        The replay starts the recording over after its end (else holds the last frame).
    """

    def __init__(self, labels: Iterable[Label], *, n_frames: int, shape: tuple[int, int],
                 pixel_size_um: float, frame_interval_s: float,
                 centre_um: tuple[float, float] = (0.0, 0.0), loop: bool = False) -> None:
        self.labels = list(labels)
        self.n_frames = int(n_frames)
        self.shape = shape
        self.pixel_size_um = float(pixel_size_um)
        self.frame_interval_s = float(frame_interval_s)
        self.centre_um = centre_um
        self.loop = loop
        self._by_frame: dict[int, list[Label]] = {}
        for lab in self.labels:
            self._by_frame.setdefault(lab.frame, []).append(lab)

    def stage_um(self, label: Label) -> tuple[float, float]:
        """Stage (x, y) um of a label (the replay's geometry)."""
        h, w = self.shape
        return (self.centre_um[0] + (label.x_px - (w - 1) / 2) * self.pixel_size_um,
                self.centre_um[1] + (label.y_px - (h - 1) / 2) * self.pixel_size_um)

    def frame_at(self, t_s: float) -> int:
        """Recorded frame shown at sample time ``t_s`` (the camera's mapping)."""
        k = max(0, math.floor(t_s / self.frame_interval_s + 1e-9))
        return k % self.n_frames if self.loop else min(k, self.n_frames - 1)

    def nearest(self, x_um: float, y_um: float, t_s: float,
                radius_um: float) -> Label | None:
        """The label nearest to stage (x, y) at sample time ``t_s``, within ``radius_um``."""
        best, best_d = None, radius_um
        for lab in self._by_frame.get(self.frame_at(t_s), ()):
            lx, ly = self.stage_um(lab)
            d = math.hypot(lx - x_um, ly - y_um)
            if d <= best_d:
                best, best_d = lab, d
        return best

    def phase_at(self, x_um: float, y_um: float, t_s: float, radius_um: float) -> str | None:
        """Labelled phase of the nucleus at stage (x, y) and sample time ``t_s``; None where no
        label lies within ``radius_um``."""
        lab = self.nearest(x_um, y_um, t_s, radius_um)
        return None if lab is None else lab.phase

    def episodes(self, wanted: Iterable[str], link_um: float = 20.0) -> list[Episode]:
        """Stays of cells in any of the ``wanted`` phases: consecutive recorded frames of one
        group (or, without groups, of labels within ``link_um`` frame to frame)."""
        want = set(wanted)
        hits = sorted((lab for lab in self.labels if lab.phase in want),
                      key=lambda lab: lab.frame)
        tracks: list[list[Label]] = []
        for lab in hits:
            x, y = self.stage_um(lab)
            home = None
            for tr in tracks:
                last = tr[-1]
                if lab.frame - last.frame not in (0, 1):
                    continue
                if lab.group is not None and last.group is not None:
                    if lab.group == last.group:
                        home = tr
                        break
                    continue
                lx, ly = self.stage_um(last)
                if math.hypot(lx - x, ly - y) <= link_um:
                    home = tr
                    break
            if home is None:
                tracks.append([lab])
            else:
                home.append(lab)
        out = []
        dt = self.frame_interval_s
        for i, tr in enumerate(tracks):
            first = [lab for lab in tr if lab.frame == tr[0].frame]
            xs, ys = zip(*(self.stage_um(lab) for lab in first), strict=True)
            out.append(Episode(i, tr[0].phase, tr[0].frame, tr[-1].frame, tr[0].frame * dt,
                               (tr[-1].frame + 1) * dt, float(np.mean(xs)), float(np.mean(ys)),
                               tuple(tr)))
        return out


def truth_phases(phase: str, model_classes: Iterable[str]) -> set[str]:
    """The labelled phases that count as the model class ``phase``: the class itself, and
    telophase for anaphase when the model has no telophase class (the five-class task)."""
    classes = set(model_classes)
    out = {phase}
    if phase == phases.ANAPHASE and phases.TELOPHASE not in classes:
        out.add(phases.TELOPHASE)
    return out
