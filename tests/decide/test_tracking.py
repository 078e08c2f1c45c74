"""Linking nuclei between screening frames: nearest neighbour, gaps, divisions, positions."""

from __future__ import annotations

import pytest

from smartscope.decide.tracking import NucleusTracker


def test_nearest_neighbour_keeps_identity_when_cells_move():
    tr = NucleusTracker(max_displacement_um=10)
    a, b = tr.link(0, [(0.0, 0.0), (30.0, 0.0)])
    assert a.new and b.new and a.track != b.track
    # listed in the other order, both moved 4 um: identities follow the cells, not the order
    b2, a2 = tr.link(0, [(34.0, 0.0), (4.0, 0.0)])
    assert (a2.track, b2.track) == (a.track, b.track) and not a2.new


def test_too_far_starts_a_new_track():
    tr = NucleusTracker(max_displacement_um=10)
    (a,) = tr.link(0, [(0.0, 0.0)])
    (b,) = tr.link(0, [(15.0, 0.0)])
    assert b.track != a.track and b.new and b.parent is None


def test_one_missed_frame_is_tolerated_two_are_not():
    tr = NucleusTracker(max_displacement_um=10, max_missed_frames=1)
    (a,) = tr.link(0, [(0.0, 0.0)])
    tr.link(0, [])
    assert tr.link(0, [(2.0, 0.0)])[0].track == a.track
    tr.link(0, [])
    tr.link(0, [])
    assert tr.link(0, [(2.0, 0.0)])[0].track != a.track


def test_division_the_nearer_half_keeps_the_track_the_other_names_its_parent():
    tr = NucleusTracker(max_displacement_um=10)
    (m,) = tr.link(0, [(0.0, 0.0)])
    d1, d2 = tr.link(0, [(-6.5, 0.0), (6.0, 0.0)])
    assert d2.track == m.track and not d2.new
    assert d1.new and d1.parent == m.track


def test_competition_goes_to_the_nearest_pair():
    tr = NucleusTracker(max_displacement_um=10)
    a, b = tr.link(0, [(0.0, 0.0), (12.0, 0.0)])
    (c,) = tr.link(0, [(9.0, 0.0)])  # 9 um from a, 3 um from b
    assert c.track == b.track


def test_positions_are_independent_and_ids_unique():
    tr = NucleusTracker()
    (a,) = tr.link("p0", [(0.0, 0.0)])
    (b,) = tr.link("p1", [(0.0, 0.0)])
    assert a.track != b.track
    assert tr.link("p0", [(1.0, 0.0)])[0].track == a.track
    assert tr.frames_seen("p0") == 2 and tr.frames_seen("p1") == 1


def test_bad_settings():
    with pytest.raises(ValueError, match="max_displacement_um"):
        NucleusTracker(max_displacement_um=0)
    with pytest.raises(ValueError, match="max_missed_frames"):
        NucleusTracker(max_missed_frames=-1)
