"""Trigger rules replayed on the tracks ``scripts/track_evidence.py collect`` recorded: each
rule's statistic at every frame of a track, once per track, scored against the truth as the
event-capture benchmark scores a run (see ``track_evidence.py``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Obs:
    """One frame of one track: run time, eligibility, called phase, probabilities, truth."""

    frame: int
    time_s: float
    eligible: bool
    phase: str
    p: dict[str, float]
    truth_cell: str | None
    truth_phase: str | None


#: A rule's statistic at the last frame of a track's history (-inf: cannot fire there); the
#: rule fires at the first frame where it reaches the threshold.
Statistic = Callable[[Sequence[Obs], str], float]


def _window(hist: Sequence[Obs], n: int) -> Sequence[Obs] | None:
    """The last ``n`` frames when they are consecutive screening frames, all eligible."""
    w = hist[-n:]
    if len(w) < n or any(not o.eligible for o in w) or w[-1].frame - w[0].frame != n - 1:
        return None
    return w


def each(n: int, called: bool) -> Statistic:
    """p(target) >= t in each of the last n frames (and called the target in each, when
    ``called``: the trigger as built, ``evidence: each``)."""
    def stat(hist: Sequence[Obs], target: str) -> float:
        w = _window(hist, n)
        if w is None or (called and any(o.phase != target for o in w)):
            return -math.inf
        return min(o.p.get(target, 0.0) for o in w)
    return stat


def mean(n: int, called: bool) -> Statistic:
    """Mean p(target) over the last n frames >= t (called the target in the last one, when
    ``called``: ``evidence: mean``)."""
    def stat(hist: Sequence[Obs], target: str) -> float:
        w = _window(hist, n)
        if w is None or (called and w[-1].phase != target):
            return -math.inf
        return sum(o.p.get(target, 0.0) for o in w) / n
    return stat


#: the mitotic order a causal filter may use (classes of the model, in the order cells go)
ORDER = ("interphase", "prometaphase", "metaphase", "anaphase")


def order_filter(stay: float) -> Statistic:
    """Posterior of the target after a forward (HMM) filter over the track's frames: states are
    the model's classes, a cell stays in its phase from one frame to the next with probability
    ``stay`` or moves to the next phase of ``ORDER`` (anaphase to interphase: the daughters);
    other classes (apoptosis) keep their probability; each frame's probabilities are its
    evidence (the model's softmax over uniform class priors as likelihoods)."""
    def stat(hist: Sequence[Obs], target: str) -> float:
        last = hist[-1]
        if not last.eligible:
            return -math.inf
        classes = list(last.p)
        k = len(classes)
        post = [1.0 / k] * k
        for j, o in enumerate(hist):
            if j:
                gap = max(1, o.frame - hist[j - 1].frame)
                for _ in range(gap):
                    post = _step(post, classes, stay)
            like = [max(o.p.get(c, 0.0), 1e-4) for c in classes]
            post = [a * b for a, b in zip(post, like, strict=True)]
            z = sum(post)
            post = [a / z for a in post]
        return post[classes.index(target)] if target in classes else -math.inf
    return stat


def _step(post: list[float], classes: list[str], stay: float) -> list[float]:
    out = [0.0] * len(classes)
    for i, c in enumerate(classes):
        if c in ORDER:
            nxt = ORDER[(ORDER.index(c) + 1) % len(ORDER)]
            out[i] += post[i] * stay
            if nxt in classes:
                out[classes.index(nxt)] += post[i] * (1 - stay)
            else:
                out[i] += post[i] * (1 - stay)
        else:
            out[i] += post[i]
    return out


def rules() -> dict[str, Statistic]:
    """The rules compared, by label."""
    out: dict[str, Statistic] = {}
    for n in (1, 2, 3, 5):
        out[f"each {n}, called"] = each(n, True)
    for n in (1, 2, 3):
        out[f"each {n}, p only"] = each(n, False)
    for n in (3, 5):
        out[f"mean {n}, called"] = mean(n, True)
        out[f"mean {n}, p only"] = mean(n, False)
    out["order filter, stay 0.9"] = order_filter(0.9)
    return out


def tracks(run: dict[str, Any]) -> list[list[Obs]]:
    """The run's tracks: each a list of frames in order."""
    by: dict[tuple[int, int], list[Obs]] = {}
    for r in run["rows"]:
        if r["track"] is None:
            continue
        by.setdefault((r["position"], r["track"]), []).append(Obs(
            r["frame"], r["time_s"], r["eligible"], r["phase"], r["probabilities"],
            r["truth_cell"], r["truth_phase"]))
    return [sorted(v, key=lambda o: o.frame) for v in by.values()]


def first_crossings(runs: Sequence[dict[str, Any]], stat: Statistic, target: str,
                    thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Precision and recall of a rule at each threshold, pooled over the runs (once per track:
    the first frame of a track where the statistic reaches the threshold)."""
    out = []
    per_run = []
    for run in runs:
        stats = []
        for tr in tracks(run):
            stats.append([(stat(tr[:j + 1], target), tr[j]) for j in range(len(tr))])
        per_run.append(stats)
    for t in thresholds:
        fires = right = 0
        caught = episodes = 0
        for run, stats in zip(runs, per_run, strict=True):
            hits = []
            for seq in stats:
                first = next((o for s, o in seq if s >= t), None)
                if first is not None:
                    hits.append(first)
            fires += len(hits)
            right += sum(o.truth_phase == target for o in hits)
            eps = run["episodes"]
            episodes += len(eps)
            caught += sum(any(o.truth_cell == e["cell"] and o.truth_phase == target
                              and e["start_s"] <= o.time_s <= e["end_s"] for o in hits)
                          for e in eps)
        out.append({"threshold": round(t, 3), "fires": fires, "right": right,
                    "precision": right / fires if fires else None, "caught": caught,
                    "episodes": episodes, "recall": caught / episodes if episodes else None})
    return out


def wrong_firings(runs: Sequence[dict[str, Any]], stat: Statistic, target: str,
                  threshold: float) -> dict[str, int]:
    """Firings on cells not in the target phase, by their true phase and the called class."""
    out: dict[str, int] = {}
    for run in runs:
        for tr in tracks(run):
            first = next((tr[j] for j in range(len(tr)) if stat(tr[:j + 1], target) >= threshold),
                         None)
            if first is not None and first.truth_phase != target:
                key = f"{first.truth_phase or 'no cell'} (called {first.phase})"
                out[key] = out.get(key, 0) + 1
    return out


def best_at(curve: Sequence[dict[str, Any]], min_precision: float) -> dict[str, Any] | None:
    """The point of most recall with precision >= ``min_precision`` (highest threshold on ties)."""
    ok = [c for c in curve if c["precision"] is not None and c["precision"] >= min_precision]
    return max(ok, key=lambda c: (c["caught"], c["threshold"]), default=None)


def between_cells_share(runs: Sequence[dict[str, Any]], target: str,
                        truth_target: bool) -> dict[str, float]:
    """How much of the spread of p(target) over eligible frames lies between cells rather than
    between the frames of one cell (frames grouped by true cell and true phase; cells seen in
    at least 2 frames): the cells truly in the target phase (``truth_target``), or the others
    the model gave p(target) >= 0.3 in some frame. A share near 1 means a cell's frames agree:
    more frames of it add little evidence."""
    groups: dict[tuple[int, str, str], list[float]] = {}
    for run in runs:
        for r in run["rows"]:
            if not r["eligible"] or r["truth_cell"] is None:
                continue
            if (r["truth_phase"] == target) != truth_target:
                continue
            key = (run["seed"], r["truth_cell"], r["truth_phase"])
            groups.setdefault(key, []).append(r["probabilities"].get(target, 0.0))
    groups = {k: v for k, v in groups.items() if len(v) >= 2
              and (truth_target or max(v) >= 0.3)}
    values = [x for v in groups.values() for x in v]
    if len(values) < 2:
        return {"cells": len(groups), "frames": len(values), "between_share": math.nan,
                "within_sd": math.nan}
    grand = sum(values) / len(values)
    total = sum((x - grand) ** 2 for x in values)
    within = sum((x - sum(v) / len(v)) ** 2 for v in groups.values() for x in v)
    sds = sorted(math.sqrt(sum((x - sum(v) / len(v)) ** 2 for x in v) / (len(v) - 1))
                 for v in groups.values())
    return {"cells": len(groups), "frames": len(values),
            "between_share": 1 - within / total if total else math.nan,
            "within_sd": sds[len(sds) // 2]}
