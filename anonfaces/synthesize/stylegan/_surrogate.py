"""Stand-in for ``anonfaces.synthesize.base.Surrogate`` while that module is not there (same fields)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Surrogate:
    """One cluster's surrogate face in the canonical frame.

    image : ndarray of shape (S, S, 3), uint8
    landmarks : ndarray of shape (68, 2), float32, in crop pixels
    """

    image: np.ndarray
    landmarks: np.ndarray
