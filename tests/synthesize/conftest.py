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


@pytest.fixture(scope="session")
def morph_cluster0(sample_encodings, sample_crops):
    """Cluster 0 of the sample at k = 5 (people as the unit): the clustering's labels, the member rows, the morph surrogate."""
    from anonfaces.cluster import cluster_encodings
    from anonfaces.synthesize import make_synthesizer

    crops, points = sample_crops
    labels = cluster_encodings(sample_encodings, algo="fixed-kmeans", k=5, unit="identity", random_state=0).labels
    rows = np.flatnonzero(labels == 0)
    return labels, rows, make_synthesizer("morph").synthesize(crops[rows], points[rows])


@pytest.fixture
def unchanged_outside():
    """``unchanged_outside(image, out, where)``: assert no pixel outside ``where`` (a `FaceReplacement`) changed."""
    return _unchanged_outside


def _unchanged_outside(image, out, where) -> None:
    x0, y0, x1, y1 = where.roi
    outside = np.ones(image.shape[:2], bool)
    outside[y0:y1, x0:x1] = ~where.changed
    np.testing.assert_array_equal(out[outside], image[outside])


@pytest.fixture
def pickle_globals():
    """``pickle_globals(path)``: every (module, name) global a network pickle asks for."""
    return _pickle_globals


def _pickle_globals(path) -> set[tuple[str, str]]:
    from anonfaces.synthesize.stylegan.pickle import NetworkUnpickler

    names: set[tuple[str, str]] = set()

    class Recorder(NetworkUnpickler):
        def find_class(self, module, name):
            names.add((module, name))
            return super().find_class(module, name)

    with open(path, "rb") as fh:
        Recorder(fh).load()
    return names
