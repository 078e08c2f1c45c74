"""The simulated sample as event-capture ground truth (``SimTruth``, ``TimeMap``)."""

from __future__ import annotations

import pytest

from smartscope.decide.capture import ScreenedField
from smartscope.sim import SimConfig
from smartscope.sim.config import DemoSpec
from smartscope.sim.sample import Sample
from smartscope.sim.truth import SimTruth, TimeMap


def test_time_map_fit_and_inverse():
    tm = TimeMap.fit([(0.0, 100.0), (1.0, 160.0), (2.0, 220.0)])
    assert tm.scale == pytest.approx(60.0) and tm.offset_s == pytest.approx(100.0)
    assert tm.to_run(tm.to_sim(3.3)) == pytest.approx(3.3)
    assert TimeMap.fit([(1.0, 70.0)], scale=60.0).offset_s == pytest.approx(10.0)
    with pytest.raises(ValueError):
        TimeMap.fit([])


def test_demo_cells_give_metaphase_episodes_and_are_found_at_their_place():
    cfg = SimConfig(seed=1, n_cells=200, demo=DemoSpec(x_um=0.0, y_um=0.0, n_cells=3,
                                                        metaphase_at_s=(120.0, 600.0)))
    sample = Sample(cfg)
    truth = SimTruth(sample.cells_at, TimeMap(0.0, 1.0), step_s=30.0)
    field = ScreenedField("p0", 0.0, 0.0, 400.0, 400.0)
    eps = truth.episodes({"metaphase"}, [field], 0.0, 900.0)
    demo = [e for e in eps if e.start_s <= 630.0]
    assert len(demo) >= 3
    for ep in demo:
        mid = (ep.start_s + min(ep.end_s, 900.0)) / 2
        cell = next(c for c in sample.cells_at(mid) if str(c.id) == ep.cell)
        found = truth.cell_at(cell.x_um + 2.0, cell.y_um - 2.0, mid)
        assert found is not None and found.id == ep.cell and found.phase == "metaphase"
    assert truth.cell_at(10_000.0, 10_000.0, 100.0) is None
    # nothing outside the field
    far = ScreenedField("far", 5000.0, 5000.0, 100.0, 100.0)
    assert truth.episodes({"metaphase"}, [far], 0.0, 900.0) == []


def test_episode_boundaries_are_the_phase_boundaries_not_the_samples():
    """A coarse sampling step must not move an episode: start and end are the phase's own."""
    cfg = SimConfig(seed=1, n_cells=200, demo=DemoSpec(x_um=0.0, y_um=0.0, n_cells=3,
                                                        metaphase_at_s=(120.0, 600.0)))
    sample = Sample(cfg)
    field = ScreenedField("p0", 0.0, 0.0, 400.0, 400.0)
    fine = SimTruth(sample.cells_at, TimeMap(0.0, 1.0), step_s=10.0)
    coarse = SimTruth(sample.cells_at, TimeMap(0.0, 1.0), step_s=100.0)
    a = {e.cell: e for e in fine.episodes({"metaphase"}, [field], 0.0, 3000.0)}
    b = {e.cell: e for e in coarse.episodes({"metaphase"}, [field], 0.0, 3000.0)}
    inside = [e for e in a.values() if 0.0 < e.start_s and e.end_s < 3000.0]
    assert inside
    for e in inside:
        c = next(c for c in sample.cells_at(e.start_s + 1.0) if str(c.id) == e.cell)
        assert c.phase == "metaphase" and c.phase_elapsed_s == pytest.approx(1.0, abs=1e-6)
        assert e.end_s - e.start_s == pytest.approx(c.phase_duration_s, abs=1e-6)
        if e.cell in b:  # the coarse step finds it too, at the same boundaries
            assert (b[e.cell].start_s, b[e.cell].end_s) == pytest.approx((e.start_s, e.end_s))
    # an episode under way at the start starts at the start; one running at the end ends there
    assert all(0.0 <= e.start_s and e.end_s <= 3000.0 for e in a.values())
    # find: the cell by id at a run time, None once it is gone
    e = inside[0]
    assert fine.find(e.cell, e.start_s + 1.0).phase == "metaphase"
    assert fine.find("no such cell", e.start_s) is None
