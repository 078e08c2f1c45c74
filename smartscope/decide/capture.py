"""Event capture: how often a run's triggers were right, and how many target events they caught.

A run's decisions (``decisions.jsonl``) are scored against a ground truth that says which phase
the cell at a stage position was in at a run time, and when cells inside the screened fields were
in the target phase. Anything that knows this implements ``TruthProvider``: the simulated
microscope (``smartscope.sim.truth.SimTruth``), a replayed movie with labelled nuclei
(``smartscope.decide.labels.LabelTruth``).

Figures per trigger (``TriggerScore``):

- precision: triggers whose cell truly was in a target phase at trigger time, over triggers;
- follow-up precision: the same over the follow-ups that went ahead (not rejected by a
  ``confirm`` step, not refused by the stage limits): what light was actually spent on;
- recall: target-phase episodes of cells inside the screened fields (seen from the start to the
  end of the run) that got a follow-up which went ahead while the cell was still in that phase
  (triggered in the phase, and still in it when the follow-up began: at its confirmation when
  it has a ``confirm`` step); a follow-up of the whole field (no ``centre_on_cell``) catches
  the episodes of every cell it matched, a zoom only its centred cell's;
- time (s) and light (illumination time, exposure ms summed over frames) spent on follow-ups of
  wrong cells, including the confirmation frames of rejected ones.

Times are run seconds: the clock of the images' timestamps (``time_s`` in the run records).
Phases are the model's names; a truth that distinguishes telophase counts it as anaphase when the
target phases name anaphase but not telophase (the five-class model's anaphase includes it).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

#: Decision events that end a follow-up (they carry its frames, light and duration).
END_EVENTS = frozenset({"return", "stop", "abandoned", "refused", "not_confirmed"})


@dataclass(frozen=True)
class TrueCell:
    """A cell of the ground truth at one time.

    Attributes
    ----------
    id : str
        Identity of the cell (stable over its life; daughters are new cells).
    phase : str
        Its phase at that time.
    x_um, y_um : float
        Stage coordinates of its centre, um.
    """

    id: str
    phase: str
    x_um: float
    y_um: float


@dataclass(frozen=True)
class Episode:
    """A stretch of time a cell spent in the target phases, inside a screened field.

    Attributes
    ----------
    cell : str
        ``TrueCell.id`` of the cell.
    start_s, end_s : float
        Run seconds (clipped to the run: an episode under way at the start starts at the start).
    position : str
        Name of the screened field it lies in.
    """

    cell: str
    start_s: float
    end_s: float
    position: str = ""


@dataclass(frozen=True)
class ScreenedField:
    """One screening position's field of view, stage um (centre and full width / height)."""

    position: str
    x_um: float
    y_um: float
    width_um: float
    height_um: float

    def contains(self, x_um: float, y_um: float, margin_um: float = 0.0) -> bool:
        """Whether a point lies inside the field, at least ``margin_um`` from its border."""
        return (abs(x_um - self.x_um) <= self.width_um / 2 - margin_um
                and abs(y_um - self.y_um) <= self.height_um / 2 - margin_um)


class TruthProvider(Protocol):
    """What event-capture scoring needs to know about the sample (the ground truth).

    Times are run seconds (the images' timestamps), positions stage micrometres.
    """

    def cell_at(self, x_um: float, y_um: float, time_s: float) -> TrueCell | None:
        """The true cell whose centre is nearest (x_um, y_um) at ``time_s``, or None when no cell
        lies within a nucleus radius (the detection was not a cell)."""
        ...

    def episodes(self, phases: Collection[str], fields: Sequence[ScreenedField],
                 start_s: float, end_s: float) -> list[Episode]:
        """Every stretch of [start_s, end_s] during which a cell whose centre lies inside one of
        ``fields`` was in one of ``phases`` (consecutive target phases form one episode)."""
        ...


@dataclass(frozen=True)
class FollowUpRecord:
    """One trigger and what became of it, read from the decision records."""

    followup: int
    trigger: str
    time_s: float
    x_um: float | None
    y_um: float | None
    went_ahead: bool
    outcome: str
    frames: int = 0
    light_ms: float = 0.0
    duration_s: float = 0.0
    truth_phase: str | None = None
    truth_cell: str | None = None
    right: bool = False
    track: int | None = None
    frame: int | None = None
    confirmed_s: float | None = None
    """When the cell was confirmed at the new objective (a ``confirm`` step), run s."""
    others: tuple[tuple[float, float], ...] = ()
    """Stage positions (um) of the other matched cells a follow-up of the whole field (no
    ``centre_on_cell``) imaged too: their episodes count as caught, not their precision."""

    @property
    def imaged_s(self) -> float:
        """When the follow-up proper began: after its confirmation, else at the trigger."""
        return self.confirmed_s if self.confirmed_s is not None else self.time_s


@dataclass
class TriggerScore:
    """Event-capture figures of one trigger (or of all triggers together)."""

    trigger: str
    triggers: int = 0
    right: int = 0
    followups: int = 0
    followups_right: int = 0
    rejected: int = 0
    rejected_right: int = 0
    episodes: int = 0
    caught: int = 0
    wrong_time_s: float = 0.0
    wrong_light_ms: float = 0.0
    time_s: float = 0.0
    light_ms: float = 0.0
    records: list[FollowUpRecord] = field(default_factory=list)
    episode_list: list[Episode] = field(default_factory=list)
    caught_keys: set[tuple[str, float]] = field(default_factory=set)
    losses: dict[str, int] = field(default_factory=dict)
    """Episodes per stage where they were lost (``smartscope.decide.diagnose``); empty when
    not explained."""

    @property
    def precision(self) -> float:
        """Triggers on a cell truly in a target phase, over triggers (NaN without triggers)."""
        return self.right / self.triggers if self.triggers else math.nan

    @property
    def followup_precision(self) -> float:
        """The same over follow-ups that went ahead (after confirmation)."""
        return self.followups_right / self.followups if self.followups else math.nan

    @property
    def recall(self) -> float:
        """Episodes caught over target-phase episodes in the screened fields."""
        return self.caught / self.episodes if self.episodes else math.nan

    def summary(self) -> dict[str, Any]:
        """The figures as a flat JSON-ready dict (NaN as None, no per-trigger records)."""
        out: dict[str, Any] = {
            k: getattr(self, k) for k in (
                "trigger", "triggers", "right", "followups", "followups_right", "rejected",
                "rejected_right", "episodes", "caught")}
        for name in ("precision", "followup_precision", "recall"):
            out[name] = _num(getattr(self, name))
        out["wrong_time_s"] = round(self.wrong_time_s, 3)
        out["time_s"] = round(self.time_s, 3)
        out["wrong_light_ms"] = round(self.wrong_light_ms, 3)
        out["light_ms"] = round(self.light_ms, 3)
        out["wrong_by_phase"] = self.wrong_by_phase()
        if self.losses:
            out["losses"] = dict(self.losses)
        return out

    def wrong_by_phase(self) -> dict[str, int]:
        """Wrong triggers counted by the phase their cell truly was in (``"no cell"``: the
        detection was not within a nucleus radius of any cell)."""
        out: dict[str, int] = {}
        for r in self.records:
            if not r.right:
                key = r.truth_phase or "no cell"
                out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))


def target_phases(phases: Iterable[str], classes: Collection[str] = ()) -> frozenset[str]:
    """The truth phases that count as the target: ``phases`` plus telophase when anaphase is a
    target and the model has no telophase class."""
    out = set(phases)
    if "anaphase" in out and "telophase" not in classes:
        out.add("telophase")
    return frozenset(out)


def followups_from_decisions(records: Iterable[Mapping[str, Any]]) -> list[FollowUpRecord]:
    """One ``FollowUpRecord`` per trigger decision, with its outcome, frames, light and time."""
    started: dict[int, dict[str, Any]] = {}
    ended: dict[int, Mapping[str, Any]] = {}
    confirmed: dict[int, float] = {}
    for rec in records:
        fid = rec.get("followup")
        if fid is None:
            continue
        event = rec.get("event")
        if event == "trigger":
            started[int(fid)] = dict(rec)
        elif event == "confirmed":
            confirmed[int(fid)] = float(rec.get("time_s", 0.0))
        elif event in END_EVENTS and int(fid) not in ended:
            ended[int(fid)] = rec
    out = []
    for fid, rec in sorted(started.items()):
        end = ended.get(fid, {})
        outcome = str(end.get("event", "unfinished"))
        cell = rec.get("cell") or {}
        went_ahead = outcome not in ("not_confirmed", "refused")
        zoom = any(isinstance(a, Mapping) and a.get("type") == "centre_on_cell"
                   for a in rec.get("actions") or ())
        others = () if zoom else tuple(
            (float(m["x_um"]), float(m["y_um"])) for m in rec.get("cells") or ()
            if isinstance(m, Mapping) and m.get("x_um") is not None and m.get("y_um") is not None
            and (m.get("x_um"), m.get("y_um")) != (cell.get("x_um"), cell.get("y_um")))
        out.append(FollowUpRecord(
            followup=fid, trigger=str(rec.get("trigger")), time_s=float(rec.get("time_s", 0.0)),
            x_um=_opt_float(cell.get("x_um")), y_um=_opt_float(cell.get("y_um")),
            went_ahead=went_ahead, outcome=outcome, frames=int(end.get("followup_frames", 0)),
            light_ms=float(end.get("light_ms", 0.0)),
            duration_s=float(end.get("duration_s", 0.0)), track=_opt_int(cell.get("track")),
            frame=_opt_int(rec.get("frame")), confirmed_s=confirmed.get(fid), others=others,
        ))
    return out


def score_run(
    decisions: Iterable[Mapping[str, Any]],
    triggers: Mapping[str, Collection[str]],
    truth: TruthProvider,
    fields: Sequence[ScreenedField],
    start_s: float,
    end_s: float,
    classes: Collection[str] = (),
) -> dict[str, TriggerScore]:
    """Score a run's triggers against the truth.

    Parameters
    ----------
    decisions : iterable of dict
        The run's decision records (``decisions.jsonl``).
    triggers : mapping
        Trigger name -> its target phases.
    truth : TruthProvider
    fields : sequence of ScreenedField
        The screening positions' fields of view.
    start_s, end_s : float
        The run's span, run seconds (first and last image).
    classes : collection of str
        The model's classes (for the telophase-as-anaphase rule).

    Returns
    -------
    dict of str to TriggerScore
        One per trigger, and ``"all"`` over every trigger (episodes counted once per trigger).
    """
    followups = followups_from_decisions(decisions)
    scores = {name: TriggerScore(name) for name in triggers}
    total = TriggerScore("all")
    caught_by: dict[str, set[tuple[str, float]]] = {name: set() for name in triggers}
    episodes: dict[str, list[Episode]] = {
        name: truth.episodes(target_phases(ph, classes), fields, start_s, end_s)
        for name, ph in triggers.items()
    }
    for f in followups:
        if f.trigger not in scores:
            continue
        targets = target_phases(triggers[f.trigger], classes)
        cell = (truth.cell_at(f.x_um, f.y_um, f.time_s)
                if f.x_um is not None and f.y_um is not None else None)
        right = cell is not None and cell.phase in targets
        f = _with_truth(f, cell, right)
        for s in (scores[f.trigger], total):
            s.records.append(f)
            s.triggers += 1
            s.right += right
            s.time_s += f.duration_s
            s.light_ms += f.light_ms
            if f.went_ahead:
                s.followups += 1
                s.followups_right += right
            elif f.outcome == "not_confirmed":
                s.rejected += 1
                s.rejected_right += right
            if not right:
                s.wrong_time_s += f.duration_s
                s.wrong_light_ms += f.light_ms
        if not f.went_ahead:
            continue
        # a zoom images its centred cell; a follow-up of the field images every matched cell
        seen = [cell] + [truth.cell_at(x, y, f.time_s) for x, y in f.others]
        for c in seen:
            if c is None or c.phase not in targets:
                continue
            for ep in episodes[f.trigger]:
                if ep.cell == c.id and ep.start_s <= f.time_s and f.imaged_s <= ep.end_s:
                    caught_by[f.trigger].add((ep.cell, ep.start_s))
    for name, s in scores.items():
        s.episode_list = list(episodes[name])
        s.caught_keys = set(caught_by[name])
        s.episodes = len(episodes[name])
        s.caught = len(caught_by[name])
        total.episodes += s.episodes
        total.caught += s.caught
    return {**scores, "all": total}


def summarise(scores: Mapping[str, TriggerScore]) -> dict[str, dict[str, Any]]:
    """JSON-ready figures of ``score_run``'s result."""
    return {name: s.summary() for name, s in scores.items()}


def format_scores(scores: Mapping[str, TriggerScore | Mapping[str, Any]]) -> list[str]:
    """One line per trigger (and one over all of them when there are several), from the result
    of ``score_run`` or its figures (``summarise``): for the end of a run."""
    lines = []
    for name, score in scores.items():
        s = score.summary() if isinstance(score, TriggerScore) else score
        if name == "all" and len(scores) == 2:
            continue
        lines.append(
            f"event capture [{name}]: {s['triggers']} trigger(s), precision "
            f"{_pct(s['precision'])} ({s['right']}/{s['triggers']}), follow-ups {s['followups']} "
            f"(precision {_pct(s['followup_precision'])}), rejected by confirm {s['rejected']}; "
            f"recall {_pct(s['recall'])} ({s['caught']}/{s['episodes']} episodes); on wrong "
            f"cells {s['wrong_time_s']:.1f} s and {s['wrong_light_ms']:.0f} ms of light")
    return lines


def _with_truth(f: FollowUpRecord, cell: TrueCell | None, right: bool) -> FollowUpRecord:
    return FollowUpRecord(**{**asdict(f), "truth_phase": cell.phase if cell else None,
                             "truth_cell": cell.id if cell else None, "right": right})


def _opt_int(v: Any) -> int | None:
    return None if v is None or v == "" else int(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _num(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


def _pct(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.2f}"
