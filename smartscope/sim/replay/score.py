"""Event capture of a replayed run against labelled nuclei: trigger precision and recall.

- A trigger is right when the nucleus it acted on (its ``centre_on_cell`` target, else its
  matched cells) is labelled, at the trigger frame's sample time, in one of the trigger's phases
  (telophase counts as anaphase for a model without a telophase class). A trigger on a nucleus
  with no label within the match radius is wrong and counted apart (``on_unlabelled``).
- An episode is a labelled cell's stay in a target phase (consecutive recorded frames); it was
  screened when a screening frame saw one of its labels; it was caught when a trigger acted on
  one of its labels while the camera showed that label's frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smartscope.sim.replay.microscope import ReplayFrame
from smartscope.sim.replay.truth import Label, RecordedTruth, truth_phases


def _in_view(frame: ReplayFrame, x_um: float, y_um: float) -> bool:
    h, w = frame.shape
    col = (w - 1) / 2 + (x_um - frame.stage_x_um) / frame.pixel_size_um
    row = (h - 1) / 2 + (y_um - frame.stage_y_um) / frame.pixel_size_um
    return 0 <= col <= w - 1 and 0 <= row <= h - 1


def _target_points(trig: Mapping[str, Any]) -> list[tuple[float, float]]:
    target = trig.get("target")
    if target and trig.get("refused") is None and "x_um" in target:
        return [(float(target["x_um"]), float(target["y_um"]))]
    return [(float(c["x_um"]), float(c["y_um"])) for c in trig.get("cells", ())]


def score_event_capture(decisions: Iterable[Mapping[str, Any]], frames: Sequence[ReplayFrame],
                        truth: RecordedTruth, trigger_phases: Mapping[str, Sequence[str]],
                        model_classes: Sequence[str], radius_um: float) -> dict[str, Any]:
    """Trigger precision and recall of one replayed run.

    Parameters
    ----------
    decisions : records of ``decisions.jsonl``
    frames : the replay camera's frames, in order (hook frame i is camera frame i + 1)
    truth : RecordedTruth
    trigger_phases : trigger name -> its phases (model classes)
    model_classes : the model's classes (decides whether telophase counts as anaphase)
    radius_um : a trigger acts on the labelled nucleus within this distance
    """
    by_index = {f.index: f for f in frames}
    wanted = {name: set().union(*(truth_phases(p, model_classes) for p in ps))
              for name, ps in trigger_phases.items()}
    triggers, right, unlabelled = [], 0, 0
    acted: list[tuple[str, Label]] = []
    for d in decisions:
        if d.get("event") != "trigger":
            continue
        cam = by_index.get(int(d.get("frame", -1)) + 1)
        if cam is None:
            continue
        phases_ok = wanted.get(str(d.get("trigger")), set())
        near = [truth.nearest(x, y, cam.t_s, radius_um) for x, y in _target_points(d)]
        hit = [lab for lab in near if lab is not None]
        ok = any(lab.phase in phases_ok for lab in hit)
        right += ok
        unlabelled += not hit
        acted += [(str(d.get("trigger")), lab) for lab in hit]
        triggers.append({"frame": d.get("frame"), "trigger": d.get("trigger"),
                         "sample_time_s": round(cam.t_s, 1), "movie_frame": cam.movie_frame,
                         "labelled_phase": hit[0].phase if hit else None, "right": ok})
    all_wanted = set().union(*wanted.values()) if wanted else set()
    screens = [f for f in frames if not f.past_end]
    episodes = truth.episodes(all_wanted, link_um=2 * radius_um)
    screened = caught = 0
    missed: list[dict[str, Any]] = []
    for ep in episodes:
        labs = ep.labels
        seen = any(f.movie_frame == lab.frame and _in_view(f, *truth.stage_um(lab))
                   for f in screens for lab in labs)
        if not seen:
            continue
        screened += 1
        if any(lab in labs and lab.phase in wanted.get(name, set()) for name, lab in acted):
            caught += 1
        else:
            missed.append({"phase": ep.phase, "frames": [ep.first_frame, ep.last_frame],
                           "x_um": round(ep.x_um, 1), "y_um": round(ep.y_um, 1)})
    n = len(triggers)
    return {
        "triggers": n, "right": right, "on_unlabelled": unlabelled,
        "precision": round(right / n, 3) if n else None,
        "episodes": screened, "caught": caught,
        "recall": round(caught / screened, 3) if screened else None,
        "phases": sorted(all_wanted), "match_radius_um": radius_um,
        "trigger_details": triggers, "missed": missed,
    }
