"""Quantisation error metrics shared by the TFLite and ONNX per-layer reports."""

from __future__ import annotations

import numpy as np


def flat(arrays) -> np.ndarray:
    """One float64 vector from an array or a sequence of arrays (one per sample)."""
    return np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64)


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio in dB of `test` against `reference`."""
    noise = float(np.mean(np.square(reference - test)))
    signal = float(np.mean(np.square(reference)))
    return float("inf") if noise == 0 else 10 * float(np.log10(max(signal, 1e-30) / noise))
