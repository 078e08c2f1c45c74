"""The virtual sample: cells on a slide moving through the cell cycle.

Every cell lives at stage coordinates (um), drifts slowly, goes through interphase -> prophase ->
prometaphase -> metaphase -> anaphase -> telophase and divides into two daughters; a small fraction
dies (apoptosis: the nucleus falls apart into fragments, which wash away after a while).

The population at a sim time is a pure function of the configuration and that time: divisions and
removals are processed in time order with per-cell random streams derived from the seed, so asking
for t=100 then t=200 gives the same cells as asking for t=200 directly.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from smartscope import phases
from smartscope.sim.config import SimConfig

#: The cycle of a healthy cell, in order.
CYCLE: tuple[str, ...] = (
    phases.INTERPHASE, phases.PROPHASE, phases.PROMETAPHASE, phases.METAPHASE,
    phases.ANAPHASE, phases.TELOPHASE,
)

#: Distance between the two daughters at division (um): telophase ends there.
DAUGHTER_SEPARATION_UM = 12.0
_MIN_SPACING_UM = 20.0


@dataclass(frozen=True, slots=True)
class CellTruth:
    """Ground truth for one cell at one sim time.

    Attributes
    ----------
    id, parent_id : int, int or None
        Cell identity; daughters get new ids and keep their mother's as ``parent_id``.
    x_um, y_um : float
        Stage coordinates of the cell's centre (um). During anaphase and telophase, the centre
        between the two chromatin masses.
    phase : str
        One of ``smartscope.phases.ALL_PHASES``.
    phase_elapsed_s, phase_duration_s : float
        Time spent in the phase so far and its total length (sim s; apoptosis: time until the
        fragments wash away).
    angle_rad : float
        Orientation: the long axis of an interphase nucleus, the spindle axis in mitosis (the
        metaphase plate is perpendicular to it).
    size : float
        Relative nucleus size (1 = average).
    brightness : float
        Relative H2B-GFP expression of this cell (1 = average).
    col_px, row_px : float or None
        Position in the current image (column, row), when asked for with an image geometry.
    """

    id: int
    parent_id: int | None
    x_um: float
    y_um: float
    phase: str
    phase_elapsed_s: float
    phase_duration_s: float
    angle_rad: float
    size: float
    brightness: float = 1.0
    col_px: float | None = None
    row_px: float | None = None

    @property
    def progress(self) -> float:
        """Fraction of the current phase done, in [0, 1]."""
        if self.phase_duration_s <= 0:
            return 0.0
        return min(1.0, max(0.0, self.phase_elapsed_s / self.phase_duration_s))


@dataclass(slots=True)
class _Cell:
    id: int
    parent_id: int | None
    birth_s: float
    x_um: float
    y_um: float
    vx: float
    vy: float
    angle_rad: float
    size: float
    brightness: float
    durations: tuple[float, ...]
    apoptosis_s: float | None

    @property
    def division_s(self) -> float:
        return self.birth_s + sum(self.durations)

    def position(self, t: float) -> tuple[float, float]:
        dt = t - self.birth_s
        return self.x_um + self.vx * dt, self.y_um + self.vy * dt


class Sample:
    """A slide of cells; ``cells_at(t)`` gives the ground truth at sim time ``t`` (s).

    Parameters
    ----------
    config : SimConfig
        Uses seed, n_cells, slide_size_um, cycle and apoptosis settings, drift and demo.
    """

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._apoptosis_s = config.apoptosis_hours * 3600.0
        self._mitosis_s = tuple(config.mitosis_minutes[p] * 60.0 for p in CYCLE[1:])
        self._interphase_s = max(600.0, config.cycle_hours * 3600.0 - sum(self._mitosis_s))
        total = self._interphase_s + sum(self._mitosis_s)
        # probability that a new cell dies, chosen so that apoptotic_fraction holds in steady state
        self._p_die = min(1.0, config.apoptotic_fraction * total / self._apoptosis_s)
        self._initial = self._seed_population()
        self._reset()

    # -- population -------------------------------------------------------------------------

    def _durations(self, rng: np.random.Generator) -> tuple[float, ...]:
        cv = self._config.duration_cv
        means = (self._interphase_s, *self._mitosis_s)
        factors = rng.lognormal(0.0, cv, size=len(means)) if cv > 0 else np.ones(len(means))
        return tuple(float(m * f) for m, f in zip(means, factors, strict=True))

    def _velocity(self, rng: np.random.Generator) -> tuple[float, float]:
        speed = self._config.drift_um_per_h / 3600.0
        vx, vy = rng.normal(0.0, speed / math.sqrt(2), size=2)
        return float(vx), float(vy)

    def _maybe_apoptosis(self, rng: np.random.Generator, birth: float,
                         interphase: float) -> float | None:
        if rng.random() < self._p_die:
            return birth + float(rng.uniform(0.1, 0.9)) * interphase
        return None

    def _seed_population(self) -> list[_Cell]:
        cfg = self._config
        rng = np.random.default_rng([cfg.seed, 0])
        w, h = cfg.slide_size_um
        pts: list[tuple[float, float]] = []
        grid: dict[tuple[int, int], list[tuple[float, float]]] = {}  # spacing-sized bins
        tries = 0
        while len(pts) < cfg.n_cells and tries < cfg.n_cells * 50:
            tries += 1
            x, y = float(rng.uniform(-w / 2, w / 2)), float(rng.uniform(-h / 2, h / 2))
            gx, gy = int(x // _MIN_SPACING_UM), int(y // _MIN_SPACING_UM)
            near = (p for i in (-1, 0, 1) for j in (-1, 0, 1)
                    for p in grid.get((gx + i, gy + j), ()))
            if all((x - a) ** 2 + (y - b) ** 2 >= _MIN_SPACING_UM**2 for a, b in near):
                pts.append((x, y))
                grid.setdefault((gx, gy), []).append((x, y))
        t0 = cfg.start_time_s
        cells: list[_Cell] = []
        for i, (x, y) in enumerate(pts):
            durs = self._durations(rng)
            age = float(rng.uniform(0.0, sum(durs)))
            birth = t0 - age
            vx, vy = self._velocity(rng)
            apo: float | None
            if rng.random() < cfg.apoptotic_fraction:
                apo = t0 - float(rng.uniform(0.0, 0.8)) * self._apoptosis_s
                birth = apo - 0.5 * durs[0]  # died half-way through interphase
            else:
                apo = self._maybe_apoptosis(rng, birth, durs[0])
                if apo is not None and apo < t0 - 0.8 * self._apoptosis_s:
                    apo = None  # would already have washed away: keep it healthy instead
            # placed where it is at t0: its birth position lies back along its drift
            x0, y0 = x - vx * (t0 - birth), y - vy * (t0 - birth)
            cells.append(_Cell(i, None, birth, x0, y0, vx, vy, float(rng.uniform(0, math.pi)),
                               float(np.clip(rng.normal(1.0, 0.1), 0.7, 1.3)),
                               float(rng.lognormal(0.0, 0.3)), durs, apo))
        if cfg.demo is not None and cells:
            self._apply_demo(cells)
        return cells

    def _apply_demo(self, cells: list[_Cell]) -> None:
        demo = self._config.demo
        assert demo is not None
        t0 = self._config.start_time_s
        pos = [c.position(t0) for c in cells]
        dist = [(x - demo.x_um) ** 2 + (y - demo.y_um) ** 2 for x, y in pos]
        order = np.argsort(dist)[: demo.n_cells]
        lo, hi = demo.metaphase_at_s
        when = np.linspace(lo, hi, len(order)) if len(order) > 1 else np.array([lo])
        for k, idx in enumerate(order):
            c = cells[int(idx)]
            to_metaphase = c.durations[0] + c.durations[1] + c.durations[2]
            x, y = c.position(t0)
            c.birth_s = t0 + float(when[k]) - to_metaphase
            c.apoptosis_s = None
            # keep the cell where it is at t0
            c.x_um, c.y_um = x - c.vx * (t0 - c.birth_s), y - c.vy * (t0 - c.birth_s)

    def _reset(self) -> None:
        self._cells: dict[int, _Cell] = {}
        self._events: list[tuple[float, int, int]] = []  # (time, kind 0=remove 1=divide, id)
        self._next_id = len(self._initial)
        self._t = -math.inf
        for c in self._initial:
            self._add(_Cell(**{k: getattr(c, k) for k in c.__slots__}))

    def _add(self, c: _Cell) -> None:
        self._cells[c.id] = c
        if c.apoptosis_s is not None and c.apoptosis_s < c.division_s:
            heapq.heappush(self._events, (c.apoptosis_s + self._apoptosis_s, 0, c.id))
        else:
            c.apoptosis_s = None
            heapq.heappush(self._events, (c.division_s, 1, c.id))

    def _divide(self, mother: _Cell) -> None:
        rng = np.random.default_rng([self._config.seed, 1, mother.id])
        t = mother.division_s
        mx, my = mother.position(t)
        ux, uy = math.cos(mother.angle_rad), math.sin(mother.angle_rad)
        for sign in (-1.0, 1.0):
            durs = self._durations(rng)
            vx, vy = self._velocity(rng)
            half = sign * DAUGHTER_SEPARATION_UM / 2
            self._add(_Cell(
                self._next_id, mother.id, t, mx + half * ux, my + half * uy, vx, vy,
                float(rng.uniform(0, math.pi)),
                float(np.clip(rng.normal(mother.size, 0.05), 0.7, 1.3)),
                float(mother.brightness * rng.lognormal(0.0, 0.1)), durs,
                self._maybe_apoptosis(rng, t, durs[0]),
            ))
            self._next_id += 1

    def _advance(self, t: float) -> None:
        if t < self._t:
            self._reset()
        while self._events and self._events[0][0] <= t:
            _, kind, cid = heapq.heappop(self._events)
            cell = self._cells.pop(cid)
            if kind == 1:
                self._divide(cell)
        self._t = t

    # -- queries ----------------------------------------------------------------------------

    def cells_at(self, t: float) -> list[CellTruth]:
        """Ground truth of every cell on the slide at sim time ``t`` (s), sorted by id."""
        self._advance(t)
        out = []
        for c in sorted(self._cells.values(), key=lambda c: c.id):
            x, y = c.position(t)
            if c.apoptosis_s is not None and t >= c.apoptosis_s:
                phase, elapsed, dur = phases.APOPTOSIS, t - c.apoptosis_s, self._apoptosis_s
            else:
                elapsed = t - c.birth_s
                phase, dur = CYCLE[-1], c.durations[-1]
                for name, d in zip(CYCLE, c.durations, strict=True):
                    if elapsed < d:
                        phase, dur = name, d
                        break
                    elapsed -= d
            out.append(CellTruth(c.id, c.parent_id, x, y, phase, elapsed, dur, c.angle_rad, c.size,
                                 c.brightness))
        return out
