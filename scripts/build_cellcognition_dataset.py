"""Build ``data/cellcognition_h2b`` from the CellCognition demo crops (expert labels, 8 classes).

The source folder holds ``crops/<CellCognition class>/P{pos}_T{time}_X{x}_Y{y}.tif`` (64 x 64 px,
uint8, CLAHE-processed by a third party) and ``frames/`` (raw 20x frames of another position).
See ``data/cellcognition_h2b/README.md`` for the origin and citation.

Cells: crops of one position whose centres stay within ``LINK_PX`` over gaps of up to
``LINK_FRAMES`` frames are one cell (union-find over all classes, so a dividing cell's prophase
to telophase crops are one group). The split is by place, never at random:

* position 37 (every class but apoptosis): test = cells whose mean centre lies at
  x < ``TEST_X1_PX`` (the left strip of the field), train = the rest;
* apoptosis (positions 13 and 46, both on both sides): within each position the apoptotic
  cells are ordered by mean centre x and the left half (``n // 2`` cells) go to test, the rest to
  train. (Until 2026-11-30 position 13 was train and position 46 test: two tracked late-stage
  cells made most of the training crops, while the test cells were mostly early condensed ones.)

Writes, under ``--out``::

    train/<class>/, test/<class>/        five-class folders (interphase, prometaphase, metaphase,
                                         anaphase = early + late anaphase + telophase, apoptosis)
    seven/train/<phase>/, seven/test/    every phase, prophase and telophase separate
    */dataset.json, */groups.csv         pixel size and cell of each crop (smartscope.train)
    frames/P0040_T0000{1,2,3}_h2b.tif    the three raw frames (chromatin channel), unchanged
    unlabelled.npz, dataset.json         crops of every nucleus found in the three raw frames
    index.csv                            one row per labelled crop

and puts real apoptotic nuclei (the first ``BANK_APOPTOSIS`` crops of position 46 in time order,
the crops it has held since the bank got apoptosis; cells 008 and 009 of them are training cells
since the apoptosis re-split) into the simulator's nucleus bank (``--bank``; its other phases,
from the HeLa set, are kept): background-subtracted, resampled to
the bank's pixel size and scaled to the simulator's apoptosis brightness (the CellCognition crops
are contrast-equalised, so their own grey values do not compare with raw counts).

Usage::

    python scripts/build_cellcognition_dataset.py --source PATH/cellcognition_h2b
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PIXEL_SIZE_UM = 0.3225
"""20x objective on a 6.45 um camera pixel (the source does not record it)."""
LINK_PX, LINK_FRAMES = 40.0, 3
TEST_X1_PX = 300.0
APOPTOSIS_POSITIONS = (13, 46)
BANK_POSITION, BANK_APOPTOSIS = 46, 20
SEVEN = {"inter": "interphase", "pro": "prophase", "prometa": "prometaphase",
         "meta": "metaphase", "earlyana": "anaphase", "lateana": "anaphase",
         "telo": "telophase", "apo": "apoptosis"}
FIVE = {"inter": "interphase", "prometa": "prometaphase", "meta": "metaphase",
        "earlyana": "anaphase", "lateana": "anaphase", "telo": "anaphase", "apo": "apoptosis"}
NAME = re.compile(r"P(\d+)_T(\d+)_X(\d+)_Y(\d+)")
DESCRIPTION = ("CellCognition demo data H2b_aTub_MD20x_exp911: HeLa H2B-mCherry, 20x wide-field, "
               "expert labels; crops CLAHE-processed by a third party (not raw counts)")

log = logging.getLogger("build_cellcognition_dataset")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, required=True, help="folder with crops/ and frames/")
    p.add_argument("--out", type=Path, default=REPO / "data/cellcognition_h2b")
    p.add_argument("--bank", type=Path, default=REPO / "smartscope/sim/data/nucleus_bank.npz",
                   help="the simulator's nucleus bank to add apoptotic crops to")
    p.add_argument("--bank-only", action="store_true", help="only update the nucleus bank")
    return p.parse_args(argv)


def add_apoptosis_to_bank(bank_path: Path, rows: list[dict],
                          max_crops: int = BANK_APOPTOSIS) -> int:
    """Replace the bank's apoptosis crops with CellCognition ones (see module doc)."""
    import tifffile
    from scipy import ndimage

    from smartscope import phases
    from smartscope.sim.bank import NucleusBank
    from smartscope.sim.sprites import PHASE_BRIGHTNESS

    with np.load(bank_path, allow_pickle=False) as z:
        crops, names, ps = z["crops"], z["phases"].astype(str), float(z["pixel_size_um"])
    keep = names != phases.APOPTOSIS
    crops, names = crops[keep], names[keep]
    ref = np.median([NucleusBank._level(NucleusBank._isolate(c))
                     for c in crops[names == phases.INTERPHASE]])
    target = ref * PHASE_BRIGHTNESS[phases.APOPTOSIS] / PHASE_BRIGHTNESS[phases.INTERPHASE]
    side = crops.shape[1]
    chosen = sorted((r for r in rows if r["cc_class"] == "apo" and r["position"] == BANK_POSITION),
                    key=lambda r: (r["time"], r["x"], r["y"]))[:max_crops]
    new = []
    for r in chosen:
        img = tifffile.imread(r["path"]).astype(np.float32)
        img = np.clip(img - np.percentile(img, 5), 0, None)
        small = ndimage.zoom(img, PIXEL_SIZE_UM / ps, order=1)
        pad = side - small.shape[0]
        out = np.pad(small, ((pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)))[:side, :side]
        level = NucleusBank._level(NucleusBank._isolate(out))
        new.append(out * np.float32(target / level) if level > 0 else out)
    np.savez_compressed(bank_path, crops=np.concatenate([crops, np.stack(new)]).astype(np.float32),
                        phases=np.concatenate([names, [phases.APOPTOSIS] * len(new)]),
                        pixel_size_um=np.float32(ps))
    return len(new)


def read_source(source: Path) -> list[dict]:
    rows = []
    for path in sorted((source / "crops").glob("*/*.tif")):
        m = NAME.search(path.name)
        if m is None or path.parent.name not in SEVEN:
            log.warning("skipped %s (unknown class or name)", path)
            continue
        pos, t, x, y = map(int, m.groups())
        rows.append({"path": path, "cc_class": path.parent.name, "position": pos, "time": t,
                     "x": x, "y": y})
    return rows


def link_cells(rows: list[dict]) -> list[int]:
    """Union-find: same position, within LINK_FRAMES frames and LINK_PX px -> same cell."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(rows):
        for j in range(i + 1, len(rows)):
            b = rows[j]
            if (a["position"] == b["position"] and abs(a["time"] - b["time"]) <= LINK_FRAMES
                    and np.hypot(a["x"] - b["x"], a["y"] - b["y"]) <= LINK_PX):
                parent[find(i)] = find(j)
    roots = [find(i) for i in range(len(rows))]
    renumber = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return [renumber[r] for r in roots]


def apoptosis_test_cells(rows: list[dict], groups: list[int]) -> set[int]:
    """Per apoptosis position, the left half (``n // 2``) of its cells by mean centre x."""
    xs: dict[int, list[int]] = {}
    where: dict[int, int] = {}
    for r, g in zip(rows, groups, strict=True):
        if r["cc_class"] == "apo" and r["position"] in APOPTOSIS_POSITIONS:
            xs.setdefault(g, []).append(r["x"])
            where[g] = r["position"]
    test: set[int] = set()
    for pos in APOPTOSIS_POSITIONS:
        cells = sorted((g for g in xs if where[g] == pos), key=lambda g: (np.mean(xs[g]), g))
        test.update(cells[:len(cells) // 2])
    return test


def assign_split(rows: list[dict], groups: list[int]) -> list[str]:
    mean_x: dict[int, list[int]] = {}
    for r, g in zip(rows, groups, strict=True):
        mean_x.setdefault(g, []).append(r["x"])
    apo_test = apoptosis_test_cells(rows, groups)
    split = []
    for r, g in zip(rows, groups, strict=True):
        if r["cc_class"] == "apo":
            split.append("unused" if r["position"] not in APOPTOSIS_POSITIONS else
                         "test" if g in apo_test else "train")
        else:
            split.append("test" if np.mean(mean_x[g]) < TEST_X1_PX else "train")
    return split


def write_folder(folder: Path, items: list[tuple[dict, str]]) -> None:
    """Copy crops into folder/<class>/ and write dataset.json + groups.csv there."""
    sys.path.insert(0, str(REPO))
    from smartscope.vision.dataset import GROUPS_CSV, write_dataset_info

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    lines = []
    for row, cls in items:
        (folder / cls).mkdir(exist_ok=True)
        name = f"{row['cc_class']}_{row['path'].name}"
        shutil.copyfile(row["path"], folder / cls / name)
        lines.append((f"{cls}/{name}", f"P{row['position']:04d}_cell{row['group']:03d}"))
    write_dataset_info(folder, PIXEL_SIZE_UM, DESCRIPTION)
    with (folder / GROUPS_CSV).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "group"])
        w.writerows(sorted(lines))


def unlabelled_pool(frames: list[Path], out: Path) -> int:
    import tifffile

    from smartscope.vision import extract_crops, find_nuclei

    crops, meta = [], []
    for i, path in enumerate(frames):
        img = tifffile.imread(path)
        nuc = find_nuclei(img, PIXEL_SIZE_UM, diameter_um=13.0)
        raw = extract_crops(img, nuc.y, nuc.x, PIXEL_SIZE_UM, crop_um=64 * PIXEL_SIZE_UM)
        crops.append(np.clip(np.rint(raw), 0, 255).astype(np.uint8))
        meta += [(i, y, x) for y, x in zip(nuc.y, nuc.x, strict=True)]
    arr = np.concatenate(crops)
    m = np.asarray(meta, dtype=np.float32)
    np.savez_compressed(out, crops=arr, frame=m[:, 0].astype(np.int16), y=m[:, 1], x=m[:, 2])
    return len(arr)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from smartscope.vision.dataset import write_dataset_info

    rows = read_source(args.source)
    groups = link_cells(rows)
    split = assign_split(rows, groups)
    for r, g, s in zip(rows, groups, split, strict=True):
        r["group"], r["split"] = g, s
    if args.bank is not None:
        n_bank = add_apoptosis_to_bank(args.bank, rows)
        log.info("nucleus bank %s: %d apoptotic crops", args.bank, n_bank)
    if args.bank_only:
        return 0
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "test"):
        write_folder(out / part, [(r, FIVE[r["cc_class"]]) for r in rows
                                  if r["split"] == part and r["cc_class"] in FIVE])
        write_folder(out / "seven" / part, [(r, SEVEN[r["cc_class"]]) for r in rows
                                            if r["split"] == part])
    with (out / "index.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "cellcognition_class", "phase", "class5", "position", "time", "x",
                    "y", "cell", "split"])
        for r in rows:
            w.writerow([f"{r['cc_class']}_{r['path'].name}", r["cc_class"], SEVEN[r["cc_class"]],
                        FIVE.get(r["cc_class"], ""), r["position"], r["time"], r["x"], r["y"],
                        f"P{r['position']:04d}_cell{r['group']:03d}", r["split"]])
    (out / "frames").mkdir(exist_ok=True)
    frames = sorted((args.source / "frames").glob("*_h2b.tif"))
    for f in frames:
        shutil.copyfile(f, out / "frames" / f.name)
    n_pool = unlabelled_pool([out / "frames" / f.name for f in frames], out / "unlabelled.npz")
    write_dataset_info(out, PIXEL_SIZE_UM, DESCRIPTION + "; unlabelled.npz: raw frames, uint8")
    counts = Counter((r["split"], FIVE.get(r["cc_class"], "-")) for r in rows)
    for part in ("train", "test"):
        log.info("%s: %s", part, {c: n for (s, c), n in sorted(counts.items()) if s == part})
    log.info("cells: %d; unlabelled crops: %d", len(set(groups)), n_pool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
