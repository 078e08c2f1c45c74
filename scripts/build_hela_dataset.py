"""Rebuild ``data/hela_phases`` (and the simulator's nucleus bank) from the source frames.

The source frames are not in the repository: pass the path of ``Fluo_Hela_02_img.tif`` (Cell
Tracking Challenge, Fluo-N2DL-HeLa training sequence 02; see ``data/hela_phases/README.md``).
The labels (``labels.csv``, made by eye) are keyed by frame and nucleus centre, so they survive
changes of the detection: each label is matched to the nearest nucleus that the package's own
detection finds (``smartscope.vision.find_nuclei``, within ``--match-um``), and its crop is cut
with the package's own geometry (``smartscope.vision.extract_crops``); a label with no detection
nearby is cut at its own position (counted in the summary).

Writes, under ``--out``::

    train/<class>/*.tif, test/<class>/*.tif    five-class folders (interphase, prometaphase,
                                               metaphase, anaphase = anaphase + telophase)
    seven/train/<phase>/*.tif, seven/test/...  every phase seen (prophase, telophase separate)
    unlabelled.npz                             pool of unlabelled crops from the training region
    index.csv                                  one row per written labelled crop
    dataset.json, */dataset.json, */groups.csv pixel size and cell of each crop (``--meta-only``
                                               rewrites just these, from index.csv)
and the nucleus bank ``--bank`` (crops of each phase, taken from the held-out test split first).

Usage::

    python scripts/build_hela_dataset.py --frames PATH/Fluo_Hela_02_img.tif
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PIXEL_SIZE_UM = 0.645
SOURCE_SHA256 = "f17bd250007766469ba08196c65bd536d71171594a31cde7817eba6e14e1bb9c"
TEST_X0_PX = 800.0
"""Test region: cells whose track lies at x >= 800 px (the right 300 px of the 1100 px field)."""
GUARD_PX = 30.0
"""Unlabelled crops are taken only at x < TEST_X0_PX - GUARD_PX (no test cell leaks in)."""
FIVE = {"interphase": "interphase", "prometaphase": "prometaphase", "metaphase": "metaphase",
        "anaphase": "anaphase", "telophase": "anaphase", "apoptosis": "apoptosis"}
BANK_SIZE_PX = 48
BANK_PER_PHASE = {"interphase": 60}
BANK_MIN = 8

log = logging.getLogger("build_hela_dataset")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=Path, help="Fluo_Hela_02_img.tif (not needed with --meta-only)")
    p.add_argument("--meta-only", action="store_true",
                   help="rewrite only dataset.json and groups.csv files (from index.csv)")
    p.add_argument("--labels", type=Path, default=REPO / "data/hela_phases/labels.csv")
    p.add_argument("--out", type=Path, default=REPO / "data/hela_phases")
    p.add_argument("--bank", type=Path, default=REPO / "smartscope/sim/data/nucleus_bank.npz",
                   help="where to write the simulator's nucleus bank")
    p.add_argument("--no-bank", action="store_true", help="do not write the nucleus bank")
    p.add_argument("--bank-only", action="store_true",
                   help="write only the nucleus bank (leave the data set folders alone)")
    p.add_argument("--unlabelled-max", type=int, default=600,
                   help="cap on the unlabelled pool (keeps the repository small)")
    p.add_argument("--match-um", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_labels(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["frame"], r["y"], r["x"] = int(r["frame"]), float(r["y"]), float(r["x"])
    return rows


def crop_name(label: dict) -> str:
    """Stable file name from the label key (not from the detection)."""
    return f"f{label['frame']:02d}_y{round(label['y']):03d}_x{round(label['x']):04d}.tif"


def match(labels: list[dict], ys: np.ndarray, xs: np.ndarray, max_px: float) -> list[int]:
    """Greedy nearest matching of labels to detections (one detection per label); -1 = none."""
    out = [-1] * len(labels)
    if len(ys) == 0:
        return out
    pairs = []
    for i, lab in enumerate(labels):
        d = np.hypot(ys - lab["y"], xs - lab["x"])
        for j in np.flatnonzero(d <= max_px):
            pairs.append((float(d[j]), i, int(j)))
    used: set[int] = set()
    for _, i, j in sorted(pairs):
        if out[i] == -1 and j not in used:
            out[i] = j
            used.add(j)
    return out


def bank_crop(image: np.ndarray, labels_img: np.ndarray, keep: set[int], y: float, x: float,
              size: int = BANK_SIZE_PX) -> np.ndarray:
    """Background-subtracted ``size`` px window around (y, x); other nuclei set to zero."""
    from scipy import ndimage

    h = size // 2
    pad = size
    img = np.pad(image.astype(np.float32), pad, mode="edge")
    lab = np.pad(labels_img, pad, mode="constant")
    cy, cx = int(round(y)) + pad, int(round(x)) + pad
    win = img[cy - h:cy + h, cx - h:cx + h]
    wl = lab[cy - h:cy + h, cx - h:cx + h]
    big = img[cy - 2 * h:cy + 2 * h, cx - 2 * h:cx + 2 * h]
    bigl = lab[cy - 2 * h:cy + 2 * h, cx - 2 * h:cx + 2 * h]
    free = ~ndimage.binary_dilation(bigl > 0, iterations=3)
    bg = float(np.median(big[free])) if free.any() else float(np.percentile(big, 10))
    out = win - bg
    others = (wl > 0) & ~np.isin(wl, list(keep))
    others = ndimage.binary_dilation(others, iterations=4) & ~np.isin(wl, list(keep))
    out[others] = 0.0
    return np.clip(out, 0, None).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(REPO))
    import tifffile

    from smartscope import phases
    from smartscope.vision import extract_crops, find_nuclei
    from smartscope.vision.io import to_storage, write_crop

    if args.meta_only:
        write_meta(args.out)
        return 0
    if args.frames is None or not args.frames.is_file():
        log.error("%s: source frames not found", args.frames)
        return 2
    digest = sha256(args.frames)
    if digest != SOURCE_SHA256:
        log.warning("source frames sha256 %s differs from the documented %s", digest,
                    SOURCE_SHA256)
    stack = tifffile.imread(args.frames)
    labels = read_labels(args.labels)
    out = args.out
    write = not args.bank_only
    for sub in ("train", "test", "seven"):
        if write and (out / sub).exists():
            shutil.rmtree(out / sub)
    rng = np.random.default_rng(args.seed)
    max_px = args.match_um / PIXEL_SIZE_UM
    index_rows, pool, pool_meta = [], [], []
    unmatched = Counter()
    bank_candidates: list[tuple[str, str, np.ndarray]] = []
    for t, image in enumerate(stack):
        nuc = find_nuclei(image, PIXEL_SIZE_UM, return_labels=True)
        here = [lab for lab in labels if lab["frame"] == t]
        hit = match(here, nuc.y, nuc.x, max_px)
        ys = np.array([nuc.y[j] if j >= 0 else lab["y"] for lab, j in zip(here, hit, strict=True)])
        xs = np.array([nuc.x[j] if j >= 0 else lab["x"] for lab, j in zip(here, hit, strict=True)])
        crops = to_storage(extract_crops(image, ys, xs, PIXEL_SIZE_UM), stack.dtype)
        # detections that belong to a labelled mitotic group in this frame (anaphase pairs)
        group_dets: dict[str, set[int]] = {}
        for lab, j in zip(here, hit, strict=True):
            if j >= 0:
                group_dets.setdefault(lab["group"], set()).add(j + 1)
        for k, (lab, j) in enumerate(zip(here, hit, strict=True)):
            phase = lab["phase"]
            if j < 0:
                unmatched[phase] += 1
            if phase == "junk":
                continue
            name = crop_name(lab)
            files = []
            if phase in FIVE:
                files.append(Path(lab["split"]) / FIVE[phase] / name)
            files.append(Path("seven") / lab["split"] / phase / name)
            for f in files if write else ():
                (out / f).parent.mkdir(parents=True, exist_ok=True)
                write_crop(out / f, crops[k])
            dist_um = float(np.hypot(ys[k] - lab["y"], xs[k] - lab["x"])) * PIXEL_SIZE_UM
            index_rows.append({
                "file": files[0].as_posix(), "split": lab["split"], "phase": phase,
                "class5": FIVE.get(phase, ""), "group": lab["group"], "frame": t,
                "label_y": lab["y"], "label_x": lab["x"], "y": f"{ys[k]:.1f}", "x": f"{xs[k]:.1f}",
                "match_um": "" if j < 0 else f"{dist_um:.2f}",
                "area_um2": "" if j < 0 else f"{nuc.area_um2[j]:.1f}",
                "mean_intensity": "" if j < 0 else f"{nuc.mean_intensity[j]:.1f}",
            })
            if phase in phases.ALL_PHASES and j >= 0:
                keep = group_dets.get(lab["group"], {j + 1}) if phase in (
                    phases.ANAPHASE, phases.TELOPHASE) else {j + 1}
                bank_candidates.append((phase, lab["split"],
                                        bank_crop(image, nuc.labels, keep, ys[k], xs[k])))
        labelled = {j for j in hit if j >= 0 and here[hit.index(j)]["phase"] != "junk"}
        free = [j for j in range(len(nuc)) if j not in labelled
                and nuc.x[j] < TEST_X0_PX - GUARD_PX]
        if free:
            raw = to_storage(extract_crops(image, nuc.y[free], nuc.x[free], PIXEL_SIZE_UM),
                             stack.dtype)
            pool.extend(raw)
            pool_meta.extend((t, nuc.y[j], nuc.x[j]) for j in free)
    if not write:
        write_bank(args.bank, bank_candidates, rng)
        return 0
    # the unlabelled pool: a seeded random subset of the training region's unlabelled nuclei
    pick = np.sort(rng.choice(len(pool), min(args.unlabelled_max, len(pool)), replace=False))
    meta = np.array([pool_meta[i] for i in pick])
    np.savez_compressed(out / "unlabelled.npz", crops=np.stack([pool[i] for i in pick]),
                        frame=meta[:, 0].astype(np.int16), y=meta[:, 1].astype(np.float32),
                        x=meta[:, 2].astype(np.float32))
    with open(out / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(index_rows[0]))
        writer.writeheader()
        writer.writerows(index_rows)
    write_meta(out)
    counts = Counter((r["split"], r["phase"]) for r in index_rows)
    for split in ("train", "test"):
        log.info("%s: %s", split, {p: counts[(split, p)] for p in phases.ALL_PHASES
                                   if counts[(split, p)]})
    log.info("unlabelled pool: %d of %d candidates", len(pick), len(pool))
    log.info("labels with no detection within %.1f um (cut at the label): %s", args.match_um,
             dict(unmatched))
    if not args.no_bank:
        write_bank(args.bank, bank_candidates, rng)
    return 0


def write_meta(out: Path) -> None:
    """dataset.json (pixel size) in every crop folder and beside unlabelled.npz; groups.csv
    (the cell of each labelled crop, from index.csv) beside the class folders."""
    from smartscope.vision.dataset import GROUPS_CSV, write_dataset_info

    desc = ("Cell Tracking Challenge Fluo-N2DL-HeLa 02 (MitoCheck), H2B-GFP, 10x wide-field, "
            "raw uint16 camera counts")
    with open(out / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    write_dataset_info(out, PIXEL_SIZE_UM, desc)
    for folder in ("train", "test", "seven/train", "seven/test"):
        write_dataset_info(out / folder, PIXEL_SIZE_UM, desc)
        lines = []
        for r in rows:
            if folder.startswith("seven"):
                if r["split"] != folder.split("/")[1]:
                    continue
                rel = f"{r['phase']}/{Path(r['file']).name}"
            else:
                if r["split"] != folder or not r["class5"]:
                    continue
                rel = f"{r['class5']}/{Path(r['file']).name}"
            lines.append((rel, f"cell{int(r['group']):04d}"))
        with open(out / folder / GROUPS_CSV, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "group"])
            w.writerows(sorted(lines))


def write_bank(path: Path, candidates: list[tuple[str, str, np.ndarray]],
               rng: np.random.Generator) -> None:
    """Crops of each phase, from the held-out test split first (training crops fill up)."""
    crops, names = [], []
    for phase in sorted({c[0] for c in candidates}):
        want = BANK_PER_PHASE.get(phase, 10**6)
        test = [c[2] for c in candidates if c[0] == phase and c[1] == "test"]
        train = [c[2] for c in candidates if c[0] == phase and c[1] == "train"]
        chosen = test[:want] if len(test) <= want else [
            test[i] for i in np.sort(rng.choice(len(test), want, replace=False))]
        if len(chosen) < BANK_MIN:
            chosen += train[: BANK_MIN - len(chosen)]
        crops.extend(chosen)
        names.extend([phase] * len(chosen))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, crops=np.round(np.stack(crops)).astype(np.float32),
                        phases=np.array(names), pixel_size_um=np.float32(PIXEL_SIZE_UM))
    log.info("nucleus bank %s: %s", path, dict(Counter(names)))


if __name__ == "__main__":
    sys.exit(main())
