"""The packaged nucleus bank (real HeLa crops for the simulator) follows the agreed format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smartscope import phases

BANK = Path(__file__).resolve().parents[2] / "smartscope" / "sim" / "data" / "nucleus_bank.npz"


def test_bank_format():
    with np.load(BANK, allow_pickle=False) as z:
        crops, names, px = z["crops"], z["phases"].astype(str), float(z["pixel_size_um"])
    assert crops.dtype == np.float32 and crops.ndim == 3 and crops.shape[1:] == (48, 48)
    assert len(names) == len(crops)
    assert set(names) <= set(phases.ALL_PHASES)
    assert px == np.float32(0.645)
    assert (crops >= 0).all()  # background-subtracted, clipped at zero
    for phase in (phases.INTERPHASE, phases.PROMETAPHASE, phases.METAPHASE, phases.ANAPHASE,
                  phases.TELOPHASE, phases.PROPHASE, phases.APOPTOSIS):
        assert (names == phase).sum() >= 8, phase
    # the nucleus is at the centre of each crop
    centre = crops[:, 18:30, 18:30].mean(axis=(1, 2))
    rim = np.concatenate([crops[:, :4].reshape(len(crops), -1),
                          crops[:, -4:].reshape(len(crops), -1)], axis=1).mean(axis=1)
    assert (centre > rim).mean() > 0.95
