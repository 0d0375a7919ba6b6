"""Fixtures for the synthesis tests: the sample's faces aligned once per session."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sample_crops(sample_dir, sample_encodings):
    """Canonical crops (n, 256, 256, 3) and crop landmarks (n, 68, 2) of every face of the sample."""
    from anonfaces.detect import align_face
    from anonfaces.utils.images import read_image

    crops, points = [], []
    cache: dict[str, np.ndarray] = {}
    for rel, lm in zip(sample_encodings.paths.tolist(), sample_encodings.landmarks68):
        if rel not in cache:
            cache[rel] = read_image(sample_dir / rel)
        face = align_face(cache[rel], lm, size=256)
        crops.append(face.image)
        points.append(face.landmarks68)
    return np.stack(crops), np.stack(points).astype(np.float32)
