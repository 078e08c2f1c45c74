"""Crops as PNG for the page: decoded by us (numpy), stretched like the model sees them, and
encoded by us (zlib), so no byte of a crop file ever reaches the browser as it was."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from smartscope.vision.preprocess import normalise


def display_uint8(crop: np.ndarray) -> np.ndarray:
    """A crop as uint8 for viewing: the model's percentile stretch, gamma 0.8."""
    v = (normalise(np.asarray(crop, np.float32)) + 1.0) / 2.0
    return (255 * np.clip(v, 0.0, 1.0) ** 0.8).astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(grey: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit greyscale PNG."""
    arr = np.ascontiguousarray(grey, np.uint8)
    if arr.ndim != 2:
        raise ValueError(f"encode_png needs a 2-D array, got shape {arr.shape}")
    h, w = arr.shape
    raw = b"".join(b"\x00" + arr[r].tobytes() for r in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))
