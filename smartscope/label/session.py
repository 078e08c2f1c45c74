"""The state of one labelling session, apart from HTTP: what to show next, and what a key did.

Order: the pool's crops in the chosen order (``label.order``); a page is the next ``n`` crops not
labelled and not skipped in this session, grouped by predicted class when predictions exist (one
row per class, so a row of correct predictions is confirmed with one key). Undone crops come back
first; skipped crops come back once everything else has been seen.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smartscope.errors import TrainingDataError
from smartscope.label.order import appearance_order, model_probabilities, uncertainty_order
from smartscope.label.png import display_uint8, encode_png
from smartscope.label.pool import LINK_UM, PoolItem, load_pool, read_crop
from smartscope.label.store import JUNK, LabelStore
from smartscope.outputs import check_dir_target

log = logging.getLogger(__name__)

PNG_CACHE = 2048
"""PNG crops kept in memory (about 3 kB each)."""


class LabelSession:
    """Pool + order + store, safe to call from the server's threads.

    Parameters
    ----------
    pool : dict of crop id to PoolItem
    store : LabelStore
    order : sequence of crop ids
        Every crop to show, first first (ids not in the pool are an error).
    predictions : mapping of crop id to (class, probability), optional
        The model's (or the run's) most likely class of each crop.
    """

    def __init__(
        self, pool: Mapping[str, PoolItem], store: LabelStore, order: Sequence[str],
        predictions: Mapping[str, tuple[str, float]] | None = None,
    ) -> None:
        unknown = [c for c in order if c not in pool]
        if unknown:
            raise TrainingDataError(f"order names crops not in the pool: {unknown[:3]}")
        self.pool = dict(pool)
        self.store = store
        self.order = list(order)
        self.predictions = dict(predictions or {})
        self.skipped: list[str] = []
        self.front: list[str] = []
        self._lock = threading.Lock()
        self._png: OrderedDict[str, bytes] = OrderedDict()
        store.reconcile(self.pool)

    # -- what to show ------------------------------------------------------------------------
    def _pending(self, n: int) -> list[str]:
        labelled = self.store.labelled
        skipped = set(self.skipped)
        out: list[str] = []
        for cid in [*self.front, *self.order]:
            if len(out) >= n:
                break
            if cid not in labelled and cid not in skipped and cid not in out:
                out.append(cid)
        if not out and self.skipped:  # everything seen: the skipped ones again
            self.skipped = [c for c in self.skipped if c not in labelled]
            out = self.skipped[:n]
            self.skipped = self.skipped[n:]
        return out

    def _card(self, cid: str) -> dict[str, Any]:
        item = self.pool[cid]
        pred = self.predictions.get(cid)
        return {
            "id": cid, "source": item.source, "frame": item.frame,
            "previous": item.previous, "next": item.next,
            "predicted": pred[0] if pred else None,
            "confidence": round(float(pred[1]), 3) if pred else None,
        }

    def page(self, n: int) -> dict[str, Any]:
        """The next ``n`` crops to label, in rows by predicted class, and the counts."""
        n = max(1, min(int(n), 200))
        with self._lock:
            ids = self._pending(n)
            cards = [self._card(c) for c in ids]
        rows: list[dict[str, Any]] = []
        if self.predictions:
            rank = {c: k for k, c in enumerate(self.store.classes)}
            groups: dict[str | None, list[dict[str, Any]]] = {}
            for card in cards:
                groups.setdefault(card["predicted"], []).append(card)
            for cls in sorted(groups, key=lambda c: (rank.get(c, len(rank)) if c else 99, c or "")):
                rows.append({"predicted": cls, "cards": groups[cls]})
        elif cards:
            rows.append({"predicted": None, "cards": cards})
        return {**self.state(), "rows": rows}

    def state(self) -> dict[str, Any]:
        labelled = self.store.labelled
        return {
            "classes": list(self.store.classes), "junk": JUNK, "counts": self.store.counts(),
            "labelled": sum(1 for c in labelled if c in self.pool), "pool": len(self.pool),
            "ordered_by": "uncertainty" if self.predictions else "brightness and size",
        }

    # -- what a key did ------------------------------------------------------------------------
    def _item(self, cid: object) -> PoolItem:
        if not isinstance(cid, str) or cid not in self.pool:
            raise KeyError(cid)
        return self.pool[cid]

    def label(self, ids: Sequence[object], label: str) -> int:
        """Give ``label`` to each crop of ``ids`` (a class or ``junk``). Returns how many."""
        with self._lock:
            items = [self._item(c) for c in ids]
            for item in items:
                pred = self.predictions.get(item.crop_id)
                self.store.assign(item, label, *(pred if pred else ("", None)))
                if item.crop_id in self.front:
                    self.front.remove(item.crop_id)
        return len(items)

    def skip(self, cid: object) -> None:
        with self._lock:
            item = self._item(cid)
            if item.crop_id in self.front:
                self.front.remove(item.crop_id)
            if item.crop_id not in self.skipped:
                self.skipped.append(item.crop_id)

    def undo(self) -> str | None:
        """Take back the last label; the crop is shown first again. Returns its id."""
        with self._lock:
            record = self.store.undo()
            if record is None:
                return None
            self.front.insert(0, record.crop_id)
            return record.crop_id

    def png(self, cid: object) -> bytes:
        """The crop as a display PNG (cached)."""
        item = self._item(cid)
        with self._lock:
            data = self._png.get(item.crop_id)
            if data is not None:
                self._png.move_to_end(item.crop_id)
                return data
        data = encode_png(display_uint8(read_crop(item)))
        with self._lock:
            self._png[item.crop_id] = data
            while len(self._png) > PNG_CACHE:
                self._png.popitem(last=False)
        return data


def predictions_from(
    ids: Sequence[str], classes: Sequence[str], probabilities: np.ndarray
) -> dict[str, tuple[str, float]]:
    """``{crop_id: (most likely class, its probability)}``."""
    top = np.argmax(probabilities, axis=1)
    return {c: (classes[k], float(probabilities[i, k])) for i, (c, k) in enumerate(zip(ids, top,
                                                                                       strict=True))}


def build_session(
    pool_dir: Path, classes: list[str], out: Path, model: Path | None = None,
    method: str = "margin", link_um: float | None = None, *,
    options: Mapping[str, str] | None = None,
) -> LabelSession:
    """Pool, order and labelled folder of a labelling session (what ``smartscope label`` serves).

    Order: with ``model``, the least certain crops first by that model; else, for a pool that
    carries a run's probabilities (``crops --from-run``), the least certain by those; else the
    brightest and smallest first. ``options`` renames arguments in messages (``{"out":
    "--out"}``: the command line names its flags).

    Raises
    ------
    TrainingDataError
        Bad pool, class names or uncertainty method.
    OutputError
        ``out`` overlaps the pool, is unwritable, or holds files not made by this command.
    """
    def name(arg: str) -> str:
        return (options or {}).get(arg, arg)

    if method not in ("margin", "entropy"):
        raise TrainingDataError(f"{name('method')} {method!r}: use margin or entropy")
    check_dir_target(Path(out), option=name("out"), inputs=[Path(pool_dir)])
    pool = load_pool(pool_dir, LINK_UM if link_um is None else link_um)
    store = LabelStore(out, classes, option=name("out"), classes_option=name("classes"))
    ids = list(pool)
    items = [pool[c] for c in ids]
    if model is not None:
        def progress(done: int, total: int) -> None:
            log.info("classified %d / %d crops", done, total)

        names, probs = model_probabilities(items, str(model), on_progress=progress)
    elif items[0].probabilities and all(i.probabilities for i in items):
        names = tuple(items[0].probabilities)
        probs = np.array([[i.probabilities.get(c, 0.0) for c in names] for i in items])
    else:
        return LabelSession(pool, store, appearance_order(items))
    order = uncertainty_order(ids, probs, method)  # type: ignore[arg-type]
    return LabelSession(pool, store, order, predictions_from(ids, names, probs))
