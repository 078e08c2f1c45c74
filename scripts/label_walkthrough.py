"""Label N crops of a pool on the labelling page in headless Chromium, the way a person would, and
count the key presses, page loads and crop pages it took.

The "person" answers from a reference labelling (a CSV of frame, y, x, label: for the HeLa movie,
the by-eye labels of ``data/hela_phases/labels.csv``; a crop takes the label within
``--match-um`` of its centre in the same frame, and a crop with no reference label is called
``--default``). With a model, when every crop still open in the current row is of the row's
predicted class, the person presses Enter once for the row; otherwise one number key per crop.

    python scripts/label_walkthrough.py POOL --reference data/hela_phases/labels.csv \\
        --label-column class5 --classes interphase,prometaphase,metaphase,anaphase \\
        --model models/hela_h2b_5class --out labelled --n 100 --screenshot docs/label_page.png

Also prints how many mitotic (non-default) crops the first N of each order hold: the pool's id
order (contact sheets), brightness and size, and the model's uncertainty.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("headless_chromium",
                                               REPO / "scripts" / "headless_chromium.py")
assert _spec is not None and _spec.loader is not None
hc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hc)

CURRENT = """(() => { const c = document.querySelector('.card.current'); if (!c) return null;
  const row = c.closest('.row');
  return {id: c.dataset.id, predicted: row.dataset.predicted,
          open: [...row.querySelectorAll('.card:not(.done)')].map(e => e.dataset.id),
          first: document.querySelector('.card') ? document.querySelector('.card').dataset.id : ''};
})()"""
IDLE = "document.body.dataset.pending === '0'"


def reference_labels(pool: dict, path: Path, column: str, match_um: float, default: str,
                     junk_values: set[str]) -> dict[str, str]:
    """The reference label of every crop of the pool (nearest reference point in its frame)."""
    by_frame: dict[int, list[tuple[float, float, str]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            label = row[column] or "junk"
            by_frame.setdefault(int(row["frame"]), []).append(
                (float(row["y"]), float(row["x"]), "junk" if label in junk_values else label))
    out = {}
    for cid, item in pool.items():
        best, dist = default, match_um
        for y, x, label in by_frame.get(item.frame, []):
            d = float(np.hypot(y - item.y, x - item.x)) * (item.pixel_size_um or 1.0)
            if d <= dist:
                best, dist = label, d
        out[cid] = best
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pool", type=Path)
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--label-column", default="class5")
    ap.add_argument("--junk-values", default="junk,prophase")
    ap.add_argument("--classes", required=True)
    ap.add_argument("--default", default="interphase")
    ap.add_argument("--match-um", type=float, default=3.0)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--x-below", type=float, help="Only crops left of this x, px (a held-out "
                    "region to the right stays unseen).")
    ap.add_argument("--screenshot", type=Path)
    ap.add_argument("--screenshot-after", type=int, default=5, help="Key presses before it.")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from smartscope.label import appearance_order
    from smartscope.label.server import LabelServer
    from smartscope.label.session import build_session

    pool_dir = args.pool
    if args.x_below is not None:  # a sub-pool: same crops, index limited to the region
        sub = args.out.parent / (args.out.name + "_pool")
        sub.mkdir(parents=True, exist_ok=True)
        with open(pool_dir / "index.csv", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = [r for r in reader if float(r["x"]) < args.x_below]
            fields = reader.fieldnames
        (sub / "crops").mkdir(exist_ok=True)
        for r in rows:
            link = sub / r["file"]
            if not link.exists():
                link.write_bytes((pool_dir / r["file"]).read_bytes())
        with open(sub / "index.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        pool_dir = sub
    classes = args.classes.split(",")
    t0 = time.monotonic()
    session = build_session(pool_dir, classes, args.out, args.model)
    t_order = time.monotonic() - t0
    truth = reference_labels(session.pool, args.reference, args.label_column, args.match_um,
                             args.default, set(args.junk_values.split(",")))
    rare = {c for c, lab in truth.items() if lab not in (args.default, "junk")}
    n = args.n
    ids = list(session.pool)
    orders = {"id order (contact sheets)": ids,
              "brightness and size": appearance_order([session.pool[c] for c in ids]),
              "this session": session.order}
    found = {name: sum(c in rare for c in order[:n]) for name, order in orders.items()}

    start = session.state()["labelled"]  # a resumed folder already has some
    server = LabelServer(session)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    keys: Counter[str] = Counter()
    pages = 0
    t1 = time.monotonic()
    try:
        with hc.Chromium(hc.find_chromium(), width=1400, height=1000) as page:
            page.call("Page.enable")
            page.call("Page.navigate", url=server.url)
            page.wait_for(f"document.querySelectorAll('.card').length > 0 && {IDLE}")
            page.wait_for("[...document.images].every(i => i.complete)")
            first = None
            while session.state()["labelled"] < n:
                cur = page.evaluate(CURRENT)
                if cur is None:
                    break
                if cur["first"] != first:
                    pages, first = pages + 1, cur["first"]
                pred = cur["predicted"]
                if (pred in classes and len(cur["open"]) > 1
                        and all(truth[c] == pred for c in cur["open"])):
                    key = "Enter"
                else:
                    label = truth[cur["id"]]
                    key = "0" if label == "junk" else str(classes.index(label) + 1)
                page.press(key)
                keys[key] += 1
                page.wait_for(IDLE)
                if args.screenshot and sum(keys.values()) == args.screenshot_after:
                    page.wait_for("[...document.images].every(i => i.complete)")
                    page.screenshot(args.screenshot)
            loads = page.evaluate("performance.getEntriesByType('navigation').length")
    finally:
        server.shutdown()
        server.server_close()
    t_label = time.monotonic() - t1
    state = session.state()
    labelled = state["labelled"] - start
    summary = {
        "pool": str(args.pool), "crops": len(session.pool), "model": str(args.model or ""),
        "labels_before": start, "labels": labelled, "counts": state["counts"],
        "key_presses": sum(keys.values()),
        "keys": dict(keys), "page_loads": loads, "crop_pages": pages,
        "key_presses_per_100": round(100 * sum(keys.values()) / labelled, 1),
        "order_seconds": round(t_order, 1), "labelling_seconds": round(t_label, 1),
        f"rare_in_first_{n}": found, "rare_in_pool": len(rare),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
