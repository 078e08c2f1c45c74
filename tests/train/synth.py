"""Synthetic nucleus crops of three visually distinct classes, for training tests.

"round": one bright disk; "plate": a thin bright bar (like a metaphase plate); "pair": two small
blobs apart (like an anaphase pair); ``draw`` also knows "small" and "ring" for 5-class sets.
uint16 with a camera offset and noise, sizes 56-72 px.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

CLASSES = ("round", "plate", "pair")


def draw(kind: str, rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(56, 73))
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    cy, cx = side / 2 + rng.normal(0, 2, 2)
    angle = rng.uniform(0, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    u = (yy - cy) * c + (xx - cx) * s
    v = -(yy - cy) * s + (xx - cx) * c
    r = side / 64
    if kind == "round":
        img = np.exp(-((u / (9 * r)) ** 2 + (v / (9 * r)) ** 2) ** 2)
    elif kind == "plate":
        img = np.exp(-((u / (2.5 * r)) ** 2 + (v / (11 * r)) ** 2) ** 2)
    elif kind == "small":
        img = np.exp(-((u / (4.5 * r)) ** 2 + (v / (4.5 * r)) ** 2) ** 2)
    elif kind == "ring":
        rad = np.hypot(u, v)
        img = np.exp(-(((rad - 9 * r) / (2.5 * r)) ** 2))
    else:
        d = 10 * r
        img = (np.exp(-(((u - d) / (4 * r)) ** 2 + (v / (6 * r)) ** 2) ** 2)
               + np.exp(-(((u + d) / (4 * r)) ** 2 + (v / (6 * r)) ** 2) ** 2))
    img = 100 + rng.uniform(800, 2000) * img + rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 65535).astype(np.uint16)


def write_labelled(folder: Path, per_class: int, seed: int,
                   classes: tuple[str, ...] = CLASSES) -> Path:
    """One sub-folder per class; files alternate between .tif, .png and .npy."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        sub = Path(folder) / kind
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = draw(kind, rng)
            if i % 3 == 0:
                tifffile.imwrite(sub / f"{kind}_{i:03d}.tif", img)
            elif i % 3 == 1:
                from skimage.io import imsave

                imsave(sub / f"{kind}_{i:03d}.png", img, check_contrast=False)
            else:
                np.save(sub / f"{kind}_{i:03d}.npy", img)
    return Path(folder)


def write_unlabelled(folder: Path, count: int, seed: int,
                     classes: tuple[str, ...] = CLASSES) -> Path:
    """A flat folder of crops of all classes (unbalanced: mostly the first class)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p = np.array([0.6] + [0.4 / (len(classes) - 1)] * (len(classes) - 1))
    for i in range(count):
        kind = classes[rng.choice(len(classes), p=p)]
        tifffile.imwrite(folder / f"u_{i:04d}.tif", draw(kind, rng))
    return folder
