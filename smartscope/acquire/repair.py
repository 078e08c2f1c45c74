"""Make a killed run readable and its status honest: ``smartscope repair RUN_DIR``.

A run ended by SIGKILL (or a power cut) leaves its NDTiff data sets (the screening one and those
of the follow-ups) with their images in the TIFF files but their ``NDTiff.index`` empty or short
(the writer buffers it), so pycromanager's reader opens them with no images and no error;
``run.json`` still says ``running``.

Repair walks the TIFF page chain of every file of every data set, keeps each image whose pixels
and metadata are complete on disk, rebuilds the index from them (written under a temporary name
and moved into place; an index that already lists more images is kept), terminates the page
chain after the last complete image (so plain TIFF readers open the file too), and marks the
run ``killed`` in ``run.json`` with the number of images recovered. No pixel is rewritten.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartscope.errors import SmartscopeError
from smartscope.outputs import atomic_file

log = logging.getLogger(__name__)

INDEX_FILE = "NDTiff.index"
_WIDTH, _HEIGHT, _BITS, _SAMPLES = 256, 257, 258, 277
_STRIP_OFFSETS, _STRIP_BYTES, _MM_METADATA = 273, 279, 51123
_PIXEL_TYPE = {8: 0, 16: 1}  # ndstorage: EIGHT_BIT, SIXTEEN_BIT; RGB is 2


class RepairError(SmartscopeError):
    """The folder is not a run folder, or its data set cannot be repaired."""


@dataclass(frozen=True)
class IndexEntry:
    """One image of an NDTiff file, as the index lists it."""

    axes: dict[str, Any]
    filename: str
    pixel_offset: int
    width: int
    height: int
    pixel_type: int
    metadata_offset: int
    metadata_length: int

    def to_bytes(self) -> bytes:
        """The entry in NDTiff's index format (ndstorage ``NDTiffIndexEntry.as_byte_buffer``)."""
        axes = json.dumps(self.axes).encode()
        name = self.filename.encode()
        return (struct.pack("<I", len(axes)) + axes + struct.pack("<I", len(name)) + name
                + struct.pack("<8I", self.pixel_offset, self.width, self.height, self.pixel_type,
                              0, self.metadata_offset, self.metadata_length, 0))


@dataclass(frozen=True)
class RepairReport:
    """What ``repair`` found and did (``images`` etc. summed over ``datasets``; ``dataset`` is
    the screening one)."""

    dataset: Path | None
    images: int
    index_entries_before: int
    index_rebuilt: bool
    chain_terminated: int
    status_before: str | None
    status_after: str | None
    datasets: tuple[Path, ...] = ()


def find_datasets(run_dir: Path) -> list[Path]:
    """The NDTiff data sets of a run folder: folders, one or two levels down, holding an
    ``NDTiff.index`` (the screening data set first, then the follow-ups in order)."""
    found = {p.parent for p in run_dir.glob(f"*/{INDEX_FILE}")}
    found |= {p.parent for p in run_dir.glob(f"*/*/{INDEX_FILE}")}
    return sorted(found, key=lambda p: (p.relative_to(run_dir).parts[0].startswith("followup"),
                                        p.as_posix()))


def scan_tiff(path: Path) -> tuple[list[IndexEntry], int | None]:
    """The complete images of one NDTiff file, in page order, and the file offset of the last
    complete page's next-page pointer when it leads to a page never completely written (the
    chain was not terminated: the writer did not finish), else None."""
    entries: list[IndexEntry] = []
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[:4] != b"II*\x00":
            return entries, None
        offset = struct.unpack("<I", head[4:8])[0]
        last_pointer: int | None = None
        while offset != 0:
            entry, n = None, 0
            if offset + 2 <= size:
                fh.seek(offset)
                (n,) = struct.unpack("<H", fh.read(2))
                table = fh.read(n * 12 + 4)
                if n and len(table) == n * 12 + 4:
                    tags = {}
                    for i in range(n):
                        tag, _typ, count, value = struct.unpack("<HHII",
                                                                table[i * 12:i * 12 + 12])
                        tags[tag] = (count, value)
                    entry = _entry(fh, path.name, tags, size)
            if entry is None:  # the chain runs into a page never (completely) written
                return entries, last_pointer
            entries.append(entry)
            last_pointer = offset + 2 + n * 12
            (offset,) = struct.unpack("<I", table[n * 12:n * 12 + 4])
    return entries, None


def _entry(fh: Any, name: str, tags: dict[int, tuple[int, int]], size: int) -> IndexEntry | None:
    try:
        width, height = tags[_WIDTH][1], tags[_HEIGHT][1]
        pix_off, pix_len = tags[_STRIP_OFFSETS][1], tags[_STRIP_BYTES][1]
        md_len, md_off = tags[_MM_METADATA]
    except KeyError:
        return None
    rgb = tags.get(_SAMPLES, (1, 1))[1] == 3
    bits = tags.get(_BITS, (1, 8))[1] if not rgb else 8
    if pix_off + pix_len > size or md_off + md_len > size or width * height == 0:
        return None
    fh.seek(md_off)
    try:
        axes = json.loads(fh.read(md_len))["Axes"]
    except (ValueError, KeyError, TypeError):
        return None
    pixel_type = 2 if rgb else _PIXEL_TYPE.get(bits)
    if pixel_type is None or not isinstance(axes, dict):
        return None
    return IndexEntry(axes, name, pix_off, width, height, pixel_type, md_off, md_len)


def _count_index(path: Path) -> int:
    """Entries in an existing index (complete ones)."""
    if not path.is_file():
        return 0
    data, pos, n = path.read_bytes(), 0, 0
    while pos + 4 <= len(data):
        (alen,) = struct.unpack("<I", data[pos:pos + 4])
        if alen == 0:
            break
        pos += 4 + alen
        if pos + 4 > len(data):
            break
        (flen,) = struct.unpack("<I", data[pos:pos + 4])
        pos += 4 + flen + 32
        if pos > len(data):
            break
        n += 1
    return n


def _tiff_order(p: Path) -> tuple[int, str]:
    stem = p.stem.rsplit("_", 1)
    return (int(stem[1]) if len(stem) == 2 and stem[1].isdigit() else 0, p.name)


def repair_dataset(folder: Path) -> tuple[int, int, bool, int]:
    """Rebuild ``folder``'s index from its TIFF files; returns (images found, entries the old
    index had, whether the index was rewritten, page chains terminated)."""
    entries: list[IndexEntry] = []
    terminated = 0
    for tif in sorted(folder.glob("*.tif"), key=_tiff_order):
        found, dangling = scan_tiff(tif)
        entries += found
        if dangling is not None:
            with open(tif, "r+b") as fh:  # the chain ends after the last complete page
                fh.seek(dangling)
                fh.write(b"\x00\x00\x00\x00")
                fh.flush()
                os.fsync(fh.fileno())
            terminated += 1
    index = folder / INDEX_FILE
    before = _count_index(index)
    rebuilt = len(entries) > before
    if rebuilt:
        with atomic_file(index) as tmp:
            tmp.write_bytes(b"".join(e.to_bytes() for e in entries))
    return len(entries), before, rebuilt, terminated


def repair_run(run_dir: Path) -> RepairReport:
    """Repair a run folder written by ``smartscope run`` (see the module docstring).

    Raises
    ------
    RepairError
        If ``run_dir`` holds no ``run.json``.
    """
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise RepairError(f"{run_dir}: not a run folder (run.json missing); give the folder "
                          "that `smartscope run` wrote")
    try:
        info = json.loads(info_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RepairError(f"{info_path}: not valid JSON ({e}); it cannot be repaired") from e
    if not isinstance(info, dict) or not isinstance(info.get("summary", {}), dict):
        raise RepairError(f"{info_path}: not the record of a smartscope run (the file, or its "
                          "field 'summary', is not an object); restore it from a copy")
    datasets = find_datasets(run_dir)
    images = before = terminated = 0
    rebuilt = False
    for ds in datasets:
        n, b, r, t = repair_dataset(ds)
        images, before, rebuilt, terminated = images + n, before + b, rebuilt or r, \
            terminated + t
    summary = info.setdefault("summary", {})
    status = summary.get("status")
    new_status = status
    if status == "running":
        new_status = "killed"
        summary.update(status="killed", frames=images,
                       dataset=str(datasets[0]) if datasets else None,
                       error="the process ended without closing the run (killed); "
                             "`smartscope repair` recovered the images on disk")
        info["repaired"] = {"at": _dt.datetime.now().isoformat(timespec="seconds"),
                            "images": images, "index_entries_before": before}
        with atomic_file(info_path) as tmp:
            tmp.write_text(json.dumps(info, indent=2) + "\n")
    return RepairReport(datasets[0] if datasets else None, images, before, rebuilt, terminated,
                        status, new_status, tuple(datasets))
