"""Where each image of a run is stored: screening in Pycro-Manager's data set, each part of each
follow-up in an NDTiff data set of its own, every one a dense array with its own pixel size.

Layout of a run folder::

    screening_1/                      Pycro-Manager's data set: axes time, position, channel
    followup_001/                     the first follow-up (the order the triggers fired in)
        01_confirm/                   one NDTiff data set per trigger action that takes images:
        03_change_interval/             NN is the action's place in the trigger's ``actions``
        04_z_stack/                     list (1 = first), then the action's type

A follow-up data set has the axes ``time`` (``confirm``, ``change_interval``, ``burst``) or ``z``
(``z_stack``), and ``channel``; each starts at 0. Its summary metadata and every image's metadata
hold the pixel size (``PixelSize_um``) and pixel -> stage affine (``PixelSizeAffine``, Micro-
Manager's ``a;b;c;d;e;f``) of the objective the images were taken with.

The hook intercepts follow-up images (pycromanager does not save an image its
``image_process_fn`` does not return) and writes them here with ``ndstorage`` (installed with
pycromanager), so the same layout comes out of the Python engine (simulator, replay, headless
Micro-Manager) and the Java one. A hook without a run folder leaves them to pycromanager.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartscope.decide import SCREEN, FrameRequest

log = logging.getLogger(__name__)

SCREENING_NAME = "screening"
"""pycromanager's ``name`` for the screening data set (it adds ``_1``)."""
FOLLOWUP_PREFIX = "followup_"


@dataclass(frozen=True)
class Placement:
    """Where one image lies: its data set (folder relative to the run folder; empty while
    unknown) and its axes in that data set."""

    dataset: str
    axes: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """For ``decisions.jsonl`` (``image``)."""
        return {"dataset": self.dataset, "axes": dict(self.axes)}


@dataclass
class _Part:
    """One follow-up data set being written."""

    folder: str
    followup: int
    action: str
    times: dict[int, int]
    z_um: dict[int, float]
    writer: Any = None
    images: int = 0


def followup_folder(followup: int) -> str:
    """The folder of a follow-up's data sets, relative to the run folder."""
    return f"{FOLLOWUP_PREFIX}{followup:03d}"


def stage_affine(pixel_size_um: float, affine: tuple[float, float, float, float] | None,
                 flip_x: bool = False, flip_y: bool = False,
                 rotation_deg: int = 0) -> tuple[float, ...]:
    """The pixel -> stage affine smartscope used, in Micro-Manager's order (a, b, c, d, e, f)
    with no translation: Micro-Manager's calibration of the objective when it has one, else the
    protocol's camera orientation scaled by the pixel size."""
    if affine is not None:
        a, b, d, e = affine
        return (a, b, 0.0, d, e, 0.0)
    dx, dy = np.array([1.0, 0.0]), np.array([0.0, 1.0])  # image +x, image +y
    cols = []
    for v in (dx, dy):
        x, y = v
        if flip_x:
            x = -x
        if flip_y:
            y = -y
        for _ in range((rotation_deg // 90) % 4):  # counter-clockwise, as pixel_to_stage
            x, y = -y, x
        cols.append((x * pixel_size_um, y * pixel_size_um))
    (a, d), (b, e) = cols
    return (a, b, 0.0, d, e, 0.0)


def affine_string(values: tuple[float, ...]) -> str:
    """Micro-Manager's ``PixelSizeAffine`` text: six numbers joined by ``;``."""
    return ";".join(repr(float(v) + 0.0) for v in values)


class ImageLayout:
    """Places every image the hook asks for and writes follow-up images into their data sets.

    Parameters
    ----------
    folder : path, optional
        The run folder. None: follow-up images stay in pycromanager's data set (they are
        returned to it), placed under their event axes.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.screening_dataset = ""
        """The screening data set's folder relative to the run folder (set once known)."""
        self._parts: dict[tuple[int, Any], _Part] = {}
        self._by_folder: dict[str, _Part] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def writes_followups(self) -> bool:
        """Whether follow-up images go into data sets of their own."""
        return self.folder is not None

    def place(self, req: FrameRequest) -> Placement:
        """Where the image of ``req`` will lie (requests come in the order they are queued)."""
        if req.mode == SCREEN or self.folder is None:
            return Placement(self.screening_dataset, req.axes())
        with self._lock:
            part = self._part(req)
            if req.action == "z_stack":
                part.z_um[req.z_index] = req.z_um if req.z_um is not None else float("nan")
                axes: dict[str, Any] = {"z": req.z_index, "channel": req.channel}
            else:
                t = part.times.setdefault(req.time_index, len(part.times))
                axes = {"time": t, "channel": req.channel}
        return Placement(part.folder, axes)

    def _part(self, req: FrameRequest) -> _Part:
        n = req.followup if req.followup is not None else 0
        key = (n, req.step if req.step is not None else req.action)
        part = self._parts.get(key)
        if part is None:
            action = req.action or "images"
            step = f"{req.step + 1:02d}_" if req.step is not None else ""
            name = f"{followup_folder(n)}/{step}{action}"
            assert self.folder is not None
            base, k = name, 1
            while (self.folder / name).exists():  # never write into an earlier data set
                k += 1
                name = f"{base}_{k}"
            part = _Part(name, n, action, {}, {})
            self._parts[key] = part
            self._by_folder[name] = part
        return part

    def write(self, req: FrameRequest, placement: Placement, image: np.ndarray,
              metadata: dict[str, Any], pixel_size_um: float | None,
              affine: tuple[float, ...] | None) -> None:
        """Write a follow-up image into its data set (the one ``place`` gave it)."""
        assert self.folder is not None
        with self._lock:
            if self._closed:
                raise RuntimeError("the run's data sets are closed; the image was not saved")
            part = self._by_folder[placement.dataset]
            if part.writer is None:
                self._finish_others(part)
                part.writer = self._open(part, req, image, pixel_size_um, affine)
            pixels = np.ascontiguousarray(image)
            part.writer.put_image(dict(placement.axes), pixels, metadata)
            part.images += 1

    def _open(self, part: _Part, req: FrameRequest, image: np.ndarray,
              pixel_size_um: float | None, affine: tuple[float, ...] | None) -> Any:
        from ndstorage import NDTiffDataset

        assert self.folder is not None
        path = self.folder / part.folder
        path.mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] = {
            "Prefix": part.folder, "DateAndTime": _dt.datetime.now().strftime(
                "%Y/%m/%d %H:%M:%S"),
            "PixelType": "GRAY8" if np.asarray(image).dtype == np.uint8 else "GRAY16",
            "Width": int(image.shape[-1]), "Height": int(image.shape[-2]),
            "ChannelGroup": req.channel_group, "Objective": req.objective,
            "Followup": part.followup, "Trigger": req.trigger, "Action": part.action,
        }
        if pixel_size_um is not None:
            summary["PixelSize_um"] = float(pixel_size_um)
        if affine is not None:
            summary["PixelSizeAffine"] = affine_string(affine)
        zs = [part.z_um[k] for k in sorted(part.z_um)]
        if len(zs) > 1:
            summary["z-step_um"] = abs(zs[1] - zs[0])
        writer = NDTiffDataset(str(path), writable=True)
        writer.initialize(summary)
        log.info("follow-up %d: images of %s go to %s", part.followup, part.action, part.folder)
        return writer

    def _finish_others(self, keep: _Part) -> None:
        """Finish every data set but ``keep`` (follow-up parts come one after the other, so at
        most one file is open)."""
        for p in self._parts.values():
            if p is not keep and p.writer is not None:
                self._finish(p)

    @staticmethod
    def _finish(part: _Part) -> None:
        writer, part.writer = part.writer, None
        try:
            writer.finish()
            writer.close()
        except Exception:
            log.exception("could not close the data set %s", part.folder)

    def datasets(self) -> list[str]:
        """The follow-up data sets written so far (relative folders)."""
        return [p.folder for p in self._parts.values() if p.images]

    def close(self) -> None:
        """Finish every follow-up data set (idempotent)."""
        with self._lock:
            self._closed = True
            for p in self._parts.values():
                if p.writer is not None:
                    self._finish(p)
