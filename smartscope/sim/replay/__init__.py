"""The replay microscope: a recorded time-lapse (TIFF stack, NDTiff data set or folder of
frames) as the sample of the simulator's devices on a real MMCore, so a protocol, its hook and
its outputs run exactly as on a microscope.

The camera shows the recorded frame at the current sample time (``time_scale`` x real seconds
since the first image); the stage pans a window over the recorded field (background outside);
another objective magnifies by the pixel-size ratio (interpolation: no new detail); z moves
blur. ``truth`` reads labelled nuclei (``frame, y, x, phase``) to score event capture.

>>> from smartscope.sim.replay import ReplayConfig, start            # doctest: +SKIP
>>> with start(ReplayConfig(movie="movie.tif", pixel_size_um=0.645,
...                         frame_interval_s=1800, time_scale=900)) as scope:
...     scope.core.snapImage()
"""

from smartscope.sim.replay.config import DEFAULT_CHANNELS, ReplayConfig
from smartscope.sim.replay.microscope import (
    FirstFrameClock,
    ReplayFrame,
    ReplayMicroscope,
    objective_table,
    start,
)
from smartscope.sim.replay.movie import Movie, open_movie
from smartscope.sim.replay.optics import Window, recorded_coords, render
from smartscope.sim.replay.truth import Label, RecordedTruth, read_labels

__all__ = [
    "DEFAULT_CHANNELS",
    "FirstFrameClock",
    "Label",
    "Movie",
    "RecordedTruth",
    "ReplayConfig",
    "ReplayFrame",
    "ReplayMicroscope",
    "Window",
    "objective_table",
    "open_movie",
    "read_labels",
    "recorded_coords",
    "render",
    "start",
]
