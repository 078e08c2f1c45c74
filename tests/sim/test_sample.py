"""The virtual sample: cell cycle, divisions, apoptosis, determinism."""

from __future__ import annotations

import collections

import pytest

from smartscope import phases
from smartscope.sim import SimConfig, demo_config
from smartscope.sim.sample import CYCLE, Sample


def _key(cells):
    return [(c.id, c.phase, round(c.x_um, 6), round(c.y_um, 6)) for c in cells]


def test_same_seed_same_sample_regardless_of_query_order() -> None:
    cfg = SimConfig(seed=3)
    a, b = Sample(cfg), Sample(cfg)
    for t in (0.0, 3600.0, 7200.0, 30000.0):
        a.cells_at(t)
    assert _key(a.cells_at(40000.0)) == _key(b.cells_at(40000.0))
    assert _key(a.cells_at(100.0)) == _key(b.cells_at(100.0))  # going back recomputes
    assert _key(Sample(SimConfig(seed=4)).cells_at(0.0)) != _key(a.cells_at(0.0))


def test_population_is_mostly_interphase_with_some_mitosis_and_apoptosis() -> None:
    cells = Sample(SimConfig(n_cells=2000, slide_size_um=(3000.0, 3000.0))).cells_at(0.0)
    counts = collections.Counter(c.phase for c in cells)
    n = len(cells)
    assert n == 2000
    mitotic = sum(counts[p] for p in phases.MITOTIC) / n
    assert 0.02 < mitotic < 0.09  # ~1 h of ~22 h
    assert 0.01 < counts[phases.APOPTOSIS] / n < 0.06
    assert counts[phases.METAPHASE] > counts[phases.ANAPHASE]  # 20 min vs 5 min


def test_cell_goes_through_the_phases_in_order_and_divides() -> None:
    sample = Sample(SimConfig(n_cells=50, apoptotic_fraction=0.0, duration_cv=0.0))
    start = {c.id: c for c in sample.cells_at(0.0)}
    cell = next(c for c in start.values() if c.phase == phases.INTERPHASE)
    t_mitosis = cell.phase_duration_s - cell.phase_elapsed_s
    seen = []
    t = 0.0
    while t < t_mitosis + 3 * 3600:
        now = {c.id: c for c in sample.cells_at(t)}
        if cell.id in now:
            seen.append(now[cell.id].phase)
        else:
            daughters = [c for c in now.values() if c.parent_id == cell.id]
            assert len(daughters) == 2
            assert all(d.phase == phases.INTERPHASE for d in daughters)
            break
        t += 60.0
    order = [p for i, p in enumerate(seen) if i == 0 or seen[i - 1] != p]
    assert order == list(CYCLE)
    durations = collections.Counter(seen)
    assert durations[phases.METAPHASE] == pytest.approx(20, abs=1)
    assert durations[phases.ANAPHASE] == pytest.approx(5, abs=1)


def test_cells_drift_slowly() -> None:
    sample = Sample(SimConfig(drift_um_per_h=6.0, apoptotic_fraction=0.0))
    a = {c.id: c for c in sample.cells_at(0.0)}
    b = {c.id: c for c in sample.cells_at(600.0)}
    moves = [((b[i].x_um - a[i].x_um) ** 2 + (b[i].y_um - a[i].y_um) ** 2) ** 0.5
             for i in a if i in b]
    assert 0 < max(moves) < 5.0  # 10 min at ~6 um/h


def test_demo_puts_cells_into_metaphase_near_the_position() -> None:
    cfg = demo_config(demo={"x_um": 100.0, "y_um": -50.0})
    sample = Sample(cfg)
    lo, hi = cfg.demo.metaphase_at_s
    entered = set()
    for t in range(0, int(hi) + 60, 30):
        for c in sample.cells_at(float(t)):
            if c.phase == phases.METAPHASE and abs(c.x_um - 100) < 100 and abs(c.y_um + 50) < 100:
                entered.add(c.id)
    assert len(entered) >= cfg.demo.n_cells
