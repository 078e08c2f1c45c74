"""Overlay PNG: each nucleus outlined in its phase colour on the contrast-stretched frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smartscope import phases as ph
from smartscope.classify.frame import FrameResult

PHASE_COLOURS: dict[str, str] = {
    ph.INTERPHASE: "#4daf4a",
    ph.PROPHASE: "#377eb8",
    ph.PROMETAPHASE: "#984ea3",
    ph.METAPHASE: "#e41a1c",
    ph.ANAPHASE: "#ff7f00",
    ph.TELOPHASE: "#ffff33",
    ph.APOPTOSIS: "#a65628",
}
"""Outline colour per phase; other class names get matplotlib's tab10 colours."""


OVERLAY_SOFTWARE = "smartscope overlay"
"""Written in every overlay PNG's ``Software`` text chunk: marks the file as ours (replaceable)."""


def is_overlay_png(path: Path) -> bool:
    """True when ``path`` is a PNG written by :func:`write_overlay` (its text chunk says so)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and OVERLAY_SOFTWARE.encode() in head


def phase_colours(classes: tuple[str, ...]) -> dict[str, str]:
    """A colour for each class (fixed for the canonical phases)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    tab10 = colormaps["tab10"]
    spare = [to_hex(tab10(i)) for i in range(tab10.N)]
    out = {}
    for i, name in enumerate(classes):
        out[name] = PHASE_COLOURS.get(name, spare[i % len(spare)])
    return out


def stretch(image: np.ndarray) -> np.ndarray:
    """Grey image -> [0, 1] with the 1st and 99.8th percentiles as black and white."""
    arr = np.asarray(image, np.float32)
    step = max(1, int(np.sqrt(arr.size / 262144)))
    lo, hi = np.percentile(arr[::step, ::step], [1.0, 99.8])
    return np.clip((arr - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)


def write_overlay(
    image: np.ndarray, result: FrameResult, path: Path, title: str | None = None
) -> Path:
    """Write a PNG of ``image`` with every nucleus outlined in its phase colour and a legend.

    Parameters
    ----------
    image : 2-D array
        The raw frame that ``result`` came from.
    result : FrameResult
        Classified nuclei; its ``nuclei.labels`` is used when present (outlines), otherwise a
        circle of the nucleus' area is drawn.
    path : path
        Output PNG file (parent folders are created).
    title : str or None
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Circle, Patch

    grey = stretch(image)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    colours = phase_colours(result.classes)
    phases = result.phases
    labels = result.nuclei.labels
    h, w = grey.shape
    scale = min(1.0, 16.0 / max(h, w) * 100)
    fig, ax = plt.subplots(figsize=(max(4.0, w / 100 * scale), max(3.0, h / 100 * scale) + 0.6))
    if labels is not None and len(result):
        from skimage.segmentation import find_boundaries

        edge = find_boundaries(labels, mode="inner")
        if max(h, w) > 1200:  # thicker outlines survive the downscaled display
            from scipy import ndimage as ndi

            edge = ndi.binary_dilation(edge)
        lut = np.zeros((len(result) + 1, 3), np.float32)
        for i, phase in enumerate(phases):
            lut[i + 1] = to_rgb(colours[phase])
        rgb[edge] = lut[labels[edge]]
    ax.imshow(rgb, interpolation="nearest")
    if labels is None:
        px = result.nuclei.pixel_size_um
        for y, x, a, phase in zip(result.nuclei.y, result.nuclei.x, result.nuclei.area_um2,
                                  phases, strict=True):
            r = np.sqrt(a / np.pi) / px
            ax.add_patch(Circle((x, y), r, fill=False, lw=1.0, color=colours[phase]))
    handles = [
        Patch(facecolor=colours[c], edgecolor="none", label=f"{c} ({result.count(c)})")
        for c in result.classes
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01),
              ncol=min(4, len(handles)), fontsize=8, frameon=False)
    ax.set_axis_off()
    ax.set_title(title or f"{len(result)} nuclei", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png", metadata={"Software": OVERLAY_SOFTWARE})
    plt.close(fig)
    return path
