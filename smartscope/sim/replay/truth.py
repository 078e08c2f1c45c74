"""Ground truth of a recorded movie: labelled nuclei (``frame, y, x, phase``) as a
``TruthProvider`` for event-capture scoring (``smartscope.decide.capture``).

The labels need not cover every nucleus: a trigger on a nucleus with no label near it counts as
wrong (no known phase). Rows whose phase is not a phase name (``junk``, ``uncertain``) stay in
as labelled non-targets. Extra columns are ignored.

Times: a run's records are in run seconds (image timestamps); the movie in sample seconds
(frame k is shown from ``k * frame_interval_s``). A ``TimeMap`` fitted on the run's frames
converts one into the other, and each labelled frame becomes a labelled time of the run
(``LabelTruth`` links the labels into cells and answers for the latest frame shown).
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from smartscope.decide.labels import LabelTruth
from smartscope.errors import RecordingError
from smartscope.phases import ALL_PHASES
from smartscope.sim.truth import TimeMap

log = logging.getLogger(__name__)

_REQUIRED = ("frame", "y", "x", "phase")


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled nucleus: recorded frame (0-based), centre (px of the recording), phase."""

    frame: int
    y_px: float
    x_px: float
    phase: str


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
    try:
        labels = _read_rows(path, n_frames, shape)
    except (UnicodeDecodeError, csv.Error) as e:
        raise RecordingError(f"{path}: not a readable CSV text file ({e}); give a "
                             "comma-separated CSV with columns frame, y, x, phase") from e
    other = Counter(lab.phase for lab in labels if lab.phase not in ALL_PHASES)
    if other:
        log.warning("%s: %d label(s) with a phase that is not a phase name (%s) count as "
                    "labelled non-targets", path, sum(other.values()),
                    ", ".join(f"{k or '(empty)'}: {n}" for k, n in other.most_common(5)))
    return labels


def _read_rows(path: Path, n_frames: int, shape: tuple[int, int]) -> list[Label]:
    labels = []
    h, w = shape
    # utf-8-sig: a CSV saved by a spreadsheet starts with a byte-order mark
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        found = list(reader.fieldnames or ())
        # column names as written by hand or by a spreadsheet: " y", "Phase"
        reader.fieldnames = [str(c).strip().lower() for c in found]
        missing = [c for c in _REQUIRED if c not in reader.fieldnames]
        if missing:
            seen = ", ".join(repr(c) for c in found[:6]) if found else "none (empty file)"
            raise RecordingError(f"{path}: columns {', '.join(missing)} are missing (columns "
                                 f"found: {seen}); give a comma-separated CSV with columns "
                                 "frame, y, x, phase (px of the recording)")
        for line, row in enumerate(reader, start=2):
            try:
                frame_f, y, x = float(row["frame"]), float(row["y"]), float(row["x"])
            except (TypeError, ValueError) as e:
                raise RecordingError(f"{path}: line {line}: frame, y, x must be numbers "
                                     f"(got {row['frame']!r}, {row['y']!r}, {row['x']!r})") from e
            if not frame_f.is_integer():
                raise RecordingError(f"{path}: line {line}: frame {row['frame']!r} is not a whole "
                                     "number; give the 0-based index of a recorded frame")
            frame = int(frame_f)
            if not 0 <= frame < n_frames:
                raise RecordingError(
                    f"{path}: line {line}: frame {frame} is outside the movie (frames 0-"
                    f"{n_frames - 1}); labels must refer to this movie's 0-based frames")
            if not (-0.5 <= y <= h - 0.5 and -0.5 <= x <= w - 0.5):
                raise RecordingError(
                    f"{path}: line {line}: (y, x) = ({y:g}, {x:g}) px is outside the {h} x {w} "
                    "px frames; labels must be pixel positions in this movie")
            labels.append(Label(frame, y, x, (row["phase"] or "").strip().lower()))
    if not labels:
        raise RecordingError(f"{path}: no labelled nucleus (only a header); give one row per "
                             "labelled nucleus: frame, y, x, phase")
    return labels


class RecordedTruth:
    """Labelled nuclei of a replayed movie, placed on the stage and in sample time.

    Parameters
    ----------
    labels : iterable of Label
    n_frames, shape : int, (rows, cols)
        Of the movie.
    pixel_size_um, frame_interval_s : float
        Of the recording.
    centre_um : (x, y)
        Stage position of the recording's centre (the replay's geometry).
    loop : bool
        The replay starts the recording over after its end (else it holds the last frame).
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

    def stage_um(self, label: Label) -> tuple[float, float]:
        """Stage (x, y) um of a label."""
        h, w = self.shape
        return (self.centre_um[0] + (label.x_px - (w - 1) / 2) * self.pixel_size_um,
                self.centre_um[1] + (label.y_px - (h - 1) / 2) * self.pixel_size_um)

    def rows(self, until_sample_s: float) -> list[tuple[float, float, float, str]]:
        """(sample time the frame starts, x_um, y_um, phase) of every label, repeated for each
        pass of the recording up to ``until_sample_s`` when it loops."""
        passes = 1
        if self.loop:
            passes = max(1, math.ceil(until_sample_s / (self.n_frames * self.frame_interval_s)))
        out = []
        for p in range(passes):
            for lab in self.labels:
                x, y = self.stage_um(lab)
                t = (p * self.n_frames + lab.frame) * self.frame_interval_s
                out.append((t, x, y, lab.phase))
        return out

    def provider(self, time_map: TimeMap, until_sample_s: float, match_um: float = 9.0,
                 link_um: float = 10.0) -> LabelTruth:
        """A ``TruthProvider`` in run seconds: each labelled frame at the run time the replay
        started showing it (``time_map``: run seconds <-> sample seconds); labels of
        consecutive frames within ``link_um`` are one cell."""
        rows = [(time_map.to_run(t), x, y, ph) for t, x, y, ph in self.rows(until_sample_s)]
        return LabelTruth(rows, match_um=match_um, max_displacement_um=link_um)
