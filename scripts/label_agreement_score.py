"""``label_agreement.py score``: first pass vs blind second pass, and the shipped model on both.

The model runs as on the microscope: the int8 bundle through LiteRT, crops read with the training
loader's geometry, and the scores come from ``smartscope.train.evaluate.evaluate_bundle`` on
folders of crops (the whole test split, and copies of the reviewed / consensus subsets).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
from label_agreement import (
    ANSWERS,
    CATEGORIES,
    DATA,
    SECOND_PASS,
    UNCERTAIN,
    agreement,
    five,
    key_of,
    read_csv,
)

log = logging.getLogger("label_agreement")


def joined() -> list[dict]:
    """Second-pass rows joined to their test crop in ``index.csv`` (first label, file)."""
    index = {key_of(r): r for r in read_csv(DATA / "index.csv") if r["split"] == "test"}
    rows = []
    for r in read_csv(SECOND_PASS):
        crop = index.get(key_of(r))
        if crop is None:
            raise SystemExit(f"{SECOND_PASS}: no test crop at frame {r['frame']}, "
                             f"y {r['label_y']}, x {r['label_x']}; rebuild the sheets")
        rows.append({**r, "file": crop["file"], "first": crop["phase"]})
    return rows


def predict(bundle: Path, files: list[str]) -> dict[str, str]:
    """Model call (argmax of the int8 bundle) per crop file, read as the loader reads it."""
    from smartscope.classify import Classifier
    from smartscope.train.cropfiles import folder_geometry, read_crop_file

    clf = Classifier(bundle, num_threads=1)
    out = {}
    for f in files:
        path = DATA / f
        geo = folder_geometry(path.parents[1], clf.card.input.crop_um, None)
        x = read_crop_file(path, geo)[0][None, ..., None].astype(np.float32)
        out[f] = clf.classes[int(clf.predict(x).argmax(1)[0])]
    return out


def scores_on(bundle: Path, crops: list[tuple[str, str]], work: Path, name: str) -> dict:
    """``evaluate_bundle`` on a copy of ``crops`` ((file, five-class label) pairs)."""
    from smartscope.train.evaluate import evaluate_bundle

    folder = work / name
    for f, label in crops:
        (folder / label).mkdir(parents=True, exist_ok=True)
        shutil.copy2(DATA / f, folder / label / Path(f).name)
    shutil.copy2(DATA / "test" / "dataset.json", folder / "dataset.json")
    return summary(evaluate_bundle(bundle, folder))


def as_classifier(first: list[str], second: list[str]) -> dict:
    """The second pass scored against the first-pass labels as the model is (five-class task:
    crops whose first label is prophase are not in the test folders; ``uncertain`` is a miss),
    over the reviewed crops (interphase: the sample only)."""
    from smartscope.train.evaluate import mitotic_scores
    from smartscope.train.reports import classification_scores

    keep = [i for i, a in enumerate(first) if a != "prophase"]
    y_true = np.array([CATEGORIES.index(first[i]) for i in keep])
    y_pred = np.array([CATEGORIES.index(second[i]) for i in keep])
    s = classification_scores(y_true, y_pred, CATEGORIES)
    s["mitotic_vs_not"] = mitotic_scores(y_true, y_pred, CATEGORIES)
    return summary(s)


def summary(s: dict) -> dict:
    keep = ("n", "accuracy", "balanced_accuracy", "macro_f1", "mitotic_vs_not")
    out = {k: s[k] for k in keep}
    out["recall"] = {c: v["recall"] for c, v in s["per_class"].items() if v["support"]}
    out["support"] = {c: v["support"] for c, v in s["per_class"].items() if v["support"]}
    return out


def score(args: argparse.Namespace) -> int:
    from smartscope.train.evaluate import evaluate_bundle

    rows = joined()
    first = [five(r["first"]) for r in rows]
    second = [five(r["second_label"]) for r in rows]
    result: dict = {
        "design": "blind second pass by the same team (not an expert) over every non-interphase "
                  "test crop and a seeded sample (seed 0) of interphase test crops",
        "five_class": agreement(first, second),
        "seven_phase": agreement([r["first"] for r in rows], [r["second_label"] for r in rows],
                                 ANSWERS),
        "uncertain": sum(s == UNCERTAIN for s in second),
    }
    result["second_pass_as_classifier"] = as_classifier(first, second)
    sure = [i for i, s in enumerate(second) if s != UNCERTAIN]
    result["five_class_without_uncertain"] = agreement(
        [first[i] for i in sure], [second[i] for i in sure])
    whole = evaluate_bundle(args.bundle, DATA / "test")
    files = [f"test/{c}/{f.name}" for c in whole["classes"]
             for f in sorted((DATA / "test" / c).glob("*.tif"))]
    from smartscope.classify.card import CARD_FILE, ModelCard

    field_um = ModelCard.load(args.bundle / CARD_FILE).input.crop_um
    calls = predict(args.bundle, sorted({r["file"] for r in rows} | set(files)))
    check = np.zeros_like(np.asarray(whole["confusion_matrix"]))
    for f in files:
        check[whole["classes"].index(Path(f).parent.name), whole["classes"].index(calls[f])] += 1
    if not np.array_equal(check, whole["confusion_matrix"]):
        raise SystemExit("per-crop model calls do not reproduce evaluate's confusion matrix")
    model = [calls[r["file"]] for r in rows]
    result["second_vs_model"] = agreement(second, model)
    result["first_vs_model"] = agreement(first, model)
    errors: dict[str, dict[str, int]] = {}
    for a, b, m in zip(first, second, model, strict=True):
        if a != m and a != "prophase":  # a model error on the benchmark (prophase: not scored)
            cell = errors.setdefault(f"{a} called {m}", {})
            cell[b] = cell.get(b, 0) + 1
    result["model_errors_by_second_pass"] = errors
    five_classes = set(whole["classes"])
    reviewed = {r["file"] for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result["model"] = {
            "whole_test": summary(whole),
            "reviewed_first_labels": scores_on(args.bundle, [
                (r["file"], a) for r, a in zip(rows, first, strict=True) if a in five_classes],
                work, "reviewed"),
            "consensus": scores_on(args.bundle, [
                (r["file"], a) for r, a, b in zip(rows, first, second, strict=True)
                if a == b and a in five_classes], work, "consensus"),
            "consensus_plus_unreviewed_interphase": scores_on(args.bundle, [
                (r["file"], a) for r, a, b in zip(rows, first, second, strict=True)
                if a == b and a in five_classes] + [
                (f, "interphase") for f in files
                if f.startswith("test/interphase/") and f not in reviewed], work, "consensus_all"),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "label_agreement.json").write_text(json.dumps(result, indent=1) + "\n")
    plot_disagreements(rows, first, second, model, args.out / "label_agreement.png", result,
                       field_um)
    fc, m = result["five_class"], result["model"]
    log.info("five-class agreement %d/%d = %.3f, kappa %.3f (%d uncertain); per class: %s",
             fc["agree"], fc["n"], fc["overall"], fc["kappa"], result["uncertain"],
             {c: f"{v['same']}/{v['n_first']}" for c, v in fc["per_class"].items()})
    for k, v in m.items():
        mit = v["mitotic_vs_not"] or {}
        log.info("model on %s: n %d, acc %.3f, bal. acc %.3f, macro F1 %.3f, mitotic P %s R %s",
                 k, v["n"], v["accuracy"], v["balanced_accuracy"], v["macro_f1"],
                 mit.get("precision"), mit.get("recall"))
    sc = result["second_pass_as_classifier"]
    log.info("second pass scored against the first as a classifier: n %d, acc %.3f, bal. acc "
             "%.3f, macro F1 %.3f, mitotic P %s R %s", sc["n"], sc["accuracy"],
             sc["balanced_accuracy"], sc["macro_f1"], (sc["mitotic_vs_not"] or {}).get("precision"),
             (sc["mitotic_vs_not"] or {}).get("recall"))
    log.info("model errors on reviewed crops, by the second pass's label: %s",
             result["model_errors_by_second_pass"])
    log.info("second pass vs model %d/%d = %.3f, kappa %.3f",
             result["second_vs_model"]["agree"], result["second_vs_model"]["n"],
             result["second_vs_model"]["overall"], result["second_vs_model"]["kappa"])
    return 0


def plot_disagreements(rows: list[dict], first: list[str], second: list[str], model: list[str],
                       path: Path, result: dict, field_um: float) -> Path:
    """Every crop the two passes label differently (five-class), both labels, the model apart."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import tifffile
    from matplotlib.patches import Rectangle

    idx = [i for i in range(len(rows)) if first[i] != second[i]]
    idx.sort(key=lambda i: (CATEGORIES.index(first[i]), CATEGORIES.index(second[i])))
    cols = 8
    nrows = max(1, -(-len(idx) // cols))
    field_px = field_um / json.loads((DATA / "dataset.json").read_text())["pixel_size_um"]
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 1.9, nrows * 2.35 + 0.7),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for n, i in enumerate(idx):
        ax = axes[divmod(n, cols)]
        img = tifffile.imread(DATA / rows[i]["file"]).astype(float)
        lo, hi = np.percentile(img, [1.0, 99.7])
        ax.imshow(np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1), cmap="gray",
                  interpolation="nearest")
        ax.set_title(f"1st {rows[i]['first']}\n2nd {rows[i]['second_label']}", fontsize=8)
        half = field_px / 2
        ax.add_patch(Rectangle((img.shape[1] / 2 - half - 0.5, img.shape[0] / 2 - half - 0.5),
                               field_px, field_px, fill=False, ls=":", lw=0.8, color="yellow"))
        ax.text(0.5, -0.04, f"model: {model[i]}", transform=ax.transAxes, ha="center",
                va="top", fontsize=7.5, color="tab:blue", style="italic")
    fc = result["five_class"]
    fig.suptitle(
        f"HeLa test crops where a blind second pass disagrees with the first ({len(idx)} of "
        f"{fc['n']} reviewed; five-class agreement {fc['overall']:.2f}, kappa {fc['kappa']:.2f}). "
        "Titles: first / second pass; blue: the shipped model's int8 call; dotted: the model's "
        f"{field_um:.1f} um field", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.55 / fig.get_figheight(),
                        bottom=0.03, wspace=0.05, hspace=0.5)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
