"""Fixtures for the simulated-microscope tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smartscope.sim import ManualClock, SimConfig, SimMicroscope, start


@pytest.fixture
def fast_config() -> SimConfig:
    """Default optics and sample on a 512 x 512 camera, without real-time exposure waits."""
    return SimConfig(real_exposure_time=False, sensor_px=512)


@pytest.fixture
def scope(fast_config: SimConfig) -> Iterator[SimMicroscope]:
    """A running simulated microscope on a manual clock at t=0."""
    with start(fast_config, clock=ManualClock(0.0)) as s:
        yield s


@pytest.fixture
def one_cell() -> SimConfig:
    """A slide with a single healthy cell within 5 um of the origin, no drift."""
    return SimConfig(n_cells=1, slide_size_um=(10.0, 10.0), drift_um_per_h=0.0,
                     real_exposure_time=False, apoptotic_fraction=0.0)
