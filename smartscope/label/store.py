"""Where labels land: ``LABELLED/<class>/<crop id>.tif`` plus ``LABELLED/labels.csv``.

The folder is what ``smartscope train --labelled`` and ``smartscope transfer --labelled`` read (one
sub-folder per class). ``junk`` labels (merged nuclei, ghosts, anything uncertain) are kept in
``labels.csv`` only, so they never become a class. Every file is written to a temporary name in
the same folder and renamed into place, so a crash or Ctrl-C leaves either the old or the new
file, never half of one; ``labels.csv`` lists labels in the order they were made, which is also
the undo order. Reopening a folder resumes: labelled crops are not shown again.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smartscope.errors import OutputError, TrainingDataError
from smartscope.label.pool import PoolItem, read_pixels
from smartscope.outputs import atomic_file

log = logging.getLogger(__name__)

LABELS_FILE = "labels.csv"
JUNK = "junk"
MAX_CLASSES = 9
"""Number keys 1-9 assign the classes."""
CLASS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
COLUMNS = ("crop_id", "label", "source", "frame", "y", "x", "predicted", "confidence",
           "labelled_utc")


def check_classes(classes: Sequence[str], option: str = "classes") -> tuple[str, ...]:
    """Validate class names (folder names, one number key each); ``option`` names them in
    messages.

    Raises
    ------
    TrainingDataError
        If there are fewer than 2 or more than 9, one repeats, is ``junk`` or is not a plain name.
    """
    names = tuple(c.strip() for c in classes if c.strip())
    if not 2 <= len(names) <= MAX_CLASSES:
        raise TrainingDataError(
            f"{option} {','.join(names)!r}: give 2 to {MAX_CLASSES} class names, comma-separated "
            "(number keys 1-9 assign them)"
        )
    for name in names:
        if not CLASS_NAME.match(name) or name.lower() == JUNK:
            raise TrainingDataError(
                f"{option}: {name!r} is not usable as a class; use a plain name (letters, digits, "
                f"'_' or '-', starting with a letter), not {JUNK!r} (the junk key has it)"
            )
    if len(set(n.lower() for n in names)) != len(names):
        raise TrainingDataError(f"{option} {','.join(names)!r}: a class name repeats")
    return names


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` under a temporary name, then move it into place."""
    with atomic_file(Path(path)) as tmp:
        tmp.write_bytes(data)


@dataclass(frozen=True)
class LabelRecord:
    """One label as a row of ``labels.csv``."""

    crop_id: str
    label: str
    source: str = ""
    frame: str = ""
    y: str = ""
    x: str = ""
    predicted: str = ""
    confidence: str = ""
    labelled_utc: str = ""


class LabelStore:
    """The labelled folder: assign, undo, resume.

    Parameters
    ----------
    folder : path
        LABELLED (created). Nothing is written outside it.
    classes : sequence of str
        Allowed labels besides ``junk``.

    Raises
    ------
    TrainingDataError
        If a class name is not usable or an existing ``labels.csv`` cannot be read.
    OutputError
        If the folder holds files but no ``labels.csv`` (it was not made by this command) or
        cannot be created.
    """

    def __init__(self, folder: Path, classes: Sequence[str], *, option: str = "folder",
                 classes_option: str = "classes") -> None:
        self.classes = check_classes(classes, classes_option)
        self._option = option
        self.root = Path(folder).resolve()
        if (self.root.is_dir() and not (self.root / LABELS_FILE).exists()
                and any(self.root.iterdir())):
            raise OutputError(
                f"{option} {folder}: holds files but no {LABELS_FILE}, so it was not made by "
                "`smartscope label`; give a new or empty folder (or one to resume)"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{option} {folder}: cannot create the folder ({e.strerror}); choose "
                              "a writable place") from e
        self.records: list[LabelRecord] = self._read()

    @property
    def labelled(self) -> dict[str, str]:
        """``{crop_id: label}`` of every label made so far."""
        return {r.crop_id: r.label for r in self.records}

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in (*self.classes, JUNK)}
        for r in self.records:
            out[r.label] = out.get(r.label, 0) + 1
        return out

    def _read(self) -> list[LabelRecord]:
        path = self.root / LABELS_FILE
        if not path.exists():
            return []
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ())[:2] != COLUMNS[:2]:
                raise TrainingDataError(
                    f"{path}: columns {reader.fieldnames}; a labels.csv of `smartscope label` "
                    f"starts with {', '.join(COLUMNS[:2])}; give another {self._option} folder"
                )
            records = [LabelRecord(**{k: row.get(k) or "" for k in COLUMNS}) for row in reader]
        latest: dict[str, LabelRecord] = {}
        for r in records:  # one label per crop: the last one counts
            latest.pop(r.crop_id, None)
            latest[r.crop_id] = r
        log.info("resuming %s: %d labels", self.root, len(latest))
        return list(latest.values())

    def _write_csv(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.__dict__ for r in self.records)
        atomic_write_bytes(self.root / LABELS_FILE, buf.getvalue().encode())

    def _file(self, label: str, crop_id: str) -> Path:
        path = (self.root / label / f"{crop_id}.tif").resolve()
        if not path.is_relative_to(self.root):  # ids and classes are plain names; belt and braces
            raise TrainingDataError(
                f"label {label!r} for {crop_id!r} would land outside {self.root}")
        return path

    def reconcile(self, pool: dict[str, PoolItem]) -> int:
        """Remove crop files of pool crops whose folder disagrees with ``labels.csv`` (a label
        undone or changed when the program stopped between the two writes). Returns the count."""
        labels = self.labelled
        removed = 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.glob("*.tif"):
                cid = path.stem
                if cid in pool and labels.get(cid) != folder.name:
                    path.unlink()
                    removed += 1
        if removed:
            log.warning("%s: removed %d crop files that labels.csv does not list", self.root,
                        removed)
        return removed

    def assign(self, item: PoolItem, label: str, predicted: str = "",
               confidence: float | None = None) -> LabelRecord:
        """Label one crop (replacing an earlier label of it) and write its file and the CSV.

        Raises
        ------
        TrainingDataError
            If ``label`` is neither a class nor ``junk``, or the crop cannot be read.
        """
        if label not in self.classes and label != JUNK:
            raise TrainingDataError(
                f"label {label!r}: use one of {', '.join(self.classes)} or {JUNK}"
            )
        previous = self.labelled.get(item.crop_id)
        if label != JUNK:
            import tifffile

            pixels = read_pixels(item)
            target = self._file(label, item.crop_id)
            target.parent.mkdir(exist_ok=True)
            buf = io.BytesIO()
            tifffile.imwrite(buf, pixels, compression="zlib")
            atomic_write_bytes(target, buf.getvalue())
        record = LabelRecord(
            crop_id=item.crop_id, label=label, source=item.source, frame=str(item.frame),
            y=f"{item.y:.1f}", x=f"{item.x:.1f}", predicted=predicted,
            confidence="" if confidence is None else f"{confidence:.4f}",
            labelled_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self.records = [r for r in self.records if r.crop_id != item.crop_id] + [record]
        self._write_csv()
        if previous and previous not in (label, JUNK):
            self._file(previous, item.crop_id).unlink(missing_ok=True)
        return record

    def undo(self) -> LabelRecord | None:
        """Take back the most recent label (CSV first, then the file). None if there is none."""
        if not self.records:
            return None
        record = self.records.pop()
        self._write_csv()
        if record.label != JUNK:
            self._file(record.label, record.crop_id).unlink(missing_ok=True)
        return record
