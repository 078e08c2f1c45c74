"""The report's plots as PNG ``data:`` URIs: phase counts over the screening, hook latency."""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Mapping, Sequence

from smartscope.report.load import FrameInfo

#: one colour per class position (interphase grey, mitotic phases in colour)
COLOURS = ("#7f7f7f", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
           "#e377c2", "#17becf", "#bcbd22")


def _png(fig: object) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # type: ignore[arg-type]
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)  # type: ignore[attr-defined]
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def phase_timeline(
    counts: Mapping[int, Counter[str]],
    frames: Mapping[int, FrameInfo],
    classes: Sequence[str],
    trigger_times_s: Sequence[float] = (),
) -> str | None:
    """Nuclei per phase in every screening frame against run time, one panel per phase, with
    the triggers marked; None without screening frames."""
    from matplotlib.figure import Figure

    screen = sorted(i for i, f in frames.items() if f.mode != "follow")
    screen = sorted(set(screen) | set(counts))
    if not screen:
        return None
    seen = {p for c in counts.values() for p in c}
    phases = list(classes) + sorted(seen - set(classes))
    t = [frames[i].time_s if i in frames else float(i) for i in screen]
    positions = sorted({frames[i].position for i in screen if i in frames})
    fig = Figure(figsize=(8.0, 0.9 + 1.05 * len(phases)))
    axes = fig.subplots(len(phases), 1, sharex=True, squeeze=False)[:, 0]
    for k, (ax, phase) in enumerate(zip(axes, phases, strict=True)):
        colour = COLOURS[k % len(COLOURS)]
        for pos in positions or [""]:
            idx = [j for j, i in enumerate(screen) if not positions or frames[i].position == pos]
            y = [counts.get(screen[j], Counter()).get(phase, 0) for j in idx]
            ax.plot([t[j] for j in idx], y, marker="." if len(idx) < 200 else None, lw=1.2,
                    color=colour, alpha=1.0 if len(positions) < 2 else 0.7)
        for tt in trigger_times_s:
            ax.axvline(tt, color="#ff9900", lw=1.0, ls="--")
        ax.set_ylabel(phase, rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].set_title("nuclei per phase in each screening frame"
                      + (f" ({len(positions)} positions, one line each)" if len(positions) > 1
                         else "") + "; dashed: triggers", fontsize=10)
    axes[-1].set_xlabel("run time (s)", fontsize=9)
    fig.subplots_adjust(left=0.16, right=0.98, top=0.93, bottom=0.5 / (0.9 + 1.05 * len(phases)))
    return _png(fig)


def latency_histogram(latencies_ms: Sequence[float], what: str) -> str | None:
    """Histogram of hook latencies (ms) with median and 95th percentile; None without data."""
    import numpy as np
    from matplotlib.figure import Figure

    if not latencies_ms:
        return None
    a = np.asarray(latencies_ms, dtype=float)
    fig = Figure(figsize=(6.0, 2.6))
    ax = fig.subplots()
    ax.hist(a, bins=min(40, max(5, int(np.sqrt(a.size)) + 1)), color="#4c72b0")
    med, p95 = float(np.median(a)), float(np.percentile(a, 95))
    ax.axvline(med, color="k", lw=1, label=f"median {med:.0f} ms")
    ax.axvline(p95, color="#d62728", lw=1, ls="--", label=f"p95 {p95:.0f} ms")
    ax.set_xlabel("hook latency per image (ms)", fontsize=9)
    ax.set_ylabel("images", fontsize=9)
    ax.set_title(f"{a.size} {what}", fontsize=10)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)
